"""Local stand-ins for the AWS pieces (tests, the local API and the benchmarks share them).

Nothing here is deployed: the layer never imports ``devtools``.
"""
