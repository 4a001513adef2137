"""The tests' and benchmarks' throwaway PostgreSQL cluster: the demo's own (`edge.demo.postgres`), so the
code that starts central's database for `storeedge demo --central` is the code the tests run on."""

from __future__ import annotations

from edge.demo.postgres import SUPERUSER, ClusterError, PgCluster, pg_bin, throwaway_cluster

__all__ = ["SUPERUSER", "ClusterError", "PgCluster", "pg_bin", "throwaway_cluster"]
