"""stegcli: hide any file inside an ordinary photo, and get it back bit for bit."""

__version__ = "0.1.0"
