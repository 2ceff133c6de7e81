"""Documentation made from the code: the configuration reference and the manual pages.

`python -m bot.docs_gen` writes them; `python -m bot.docs_gen --check` says which committed file
is out of date (exit 1). The config keys come from bot/config.py (each key's `setting(default,
doc)`), the command line from the argparse definitions in bot/cli.
"""
