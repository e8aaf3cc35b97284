"""``python -m stegcli`` runs the command-line tool."""

from stegcli.cli import main

if __name__ == "__main__":
    main()
