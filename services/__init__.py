"""The panel's nameko services, one package each (DESIGN.md "Layout")."""
