"""``python -m benchmarks``: run every benchmark and print Markdown tables."""

from benchmarks.micro import main

main()
