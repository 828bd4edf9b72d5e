"""Side-by-side benchmarks of Chainlit data layers: ``python -m benchmarks.run [--quick] [--json out.json]``.

Never collected by pytest (``testpaths = ["tests"]``); see ``benchmarks/README.md``.
"""
