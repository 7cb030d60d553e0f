"""Local servers that speak AI vendors' wire formats, for tests and benchmarks."""
