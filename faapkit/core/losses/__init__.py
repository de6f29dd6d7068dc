"""Loss strategies of the method versions and the pieces they share."""
