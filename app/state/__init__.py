"""The worker's durable memory: per dossier, what it made Elements hold and from which
upstream values (`record`), kept in process (`memory`) and on the compacted state topic
(`app.kafka.state`). It spares Elements reads and tells what changed upstream; it never
stands in for the upstream systems' current state.
"""
