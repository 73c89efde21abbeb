"""The city tier (issue 20): every centre's hub stays autonomous; what crosses to the city
goes through a NATS JetStream cluster (3+ nodes, R3 streams) into a city PostgreSQL.

Modules:
- subjects.py  the names: ``city.<centre>.<kind>`` (a centre's records),
               ``citylive.<centre>`` (its floor now), ``citydown.<centre>.<kind>`` (city ->
               one centre), ``cityall.<kind>`` (city -> all); streams, consumers, users.
- natsconf.py  the cluster's node configuration: accounts, one user per centre that may
               publish only its own subtree.
- streams.py   the streams and durable consumers, created idempotently.
- records.py   journal record -> city records, without personal data (tokens only).
- export.py    `onewindow city-export`, the centre's exporter (a process beside the hub):
               journal after a persisted cursor -> JetStream, the cursor advanced only on
               the stream's acknowledgement.
- conn.py      a connection to the cluster that waits out a city away at start.
- ingest.py    `onewindow city-ingest`: durable pull consumer -> city PostgreSQL
               (partitioned by centre and date, idempotent on (centre, pos, part)).
- citydb.py    the city database: schema (partitioned by month, then hash of centre),
               idempotent writes, today's counters, retention of residents' tokens.
- dashboard.py the city pages (`onewindow city-web`: dashboard live, monthly report;
               city and district roles).

- cli.py       the commands (city-export, city-ingest, city-web, city-user, city-centre,
               city-nats-config, city-purge).
- features.py, router.py: cases across centres, the city catalog, diversion (their own
               docstrings).

docs/city.md is the deployment and outage guide.
"""
