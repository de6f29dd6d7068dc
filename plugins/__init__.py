"""Built-in faap plugins, installed as the ``faap_plugins`` package and discovered through the
``faap`` entry-point group exactly like third-party plugins. None of them imports torch at
import time: factories are ``"module:attr"`` strings resolved when a run builds the part."""
