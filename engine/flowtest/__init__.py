"""The try/test harness: flows run offline by the simulator, and `flowdesk test` suites.

It sits above the pure flow package because it needs the pipeline and the AI
gateway's offline providers; the flow package itself imports neither.
"""
