"""Built-in faap plugins, installed as the ``faap_plugins`` package and discovered through the
``faap`` entry-point group exactly like third-party plugins. None of them imports torch at
import time: factories are ``"module:attr"`` strings resolved when a run builds the part.

Each method version is one package, ``v<name>/``: its ``__init__`` holds the rationale (docstring),
the loss options, the loss and version specs and their registration (torch-free), and ``loss.py``
its loss strategy, built on the shared pieces ``faapkit.plugin_api`` re-exports."""
