"""``python -m meshcli`` is ``mesh``."""

from meshcli import app

app(prog_name="mesh")
