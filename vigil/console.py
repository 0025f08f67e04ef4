"""The one rich console the CLI prints through."""

from rich.console import Console

console = Console(soft_wrap=True)
if not console.is_terminal:  # logs and CI: full URLs and reasons rather than an 80-column squeeze
    console.width = 200
