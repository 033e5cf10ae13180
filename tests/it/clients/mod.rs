//! Real PostgreSQL clients (psql, pgcli, dbt) against a real PostgreSQL server with TLS.

mod exec;
mod pg_smoke;
