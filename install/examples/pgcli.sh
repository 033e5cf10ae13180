# pgcli on Redshift with a fresh IAM password: source this from your shell rc; pgcli reads the PGHOST/PGUSER/PGPASSWORD/PGSSLMODE... that exec sets.
rpgcli() {
  redshift-creds exec --cluster-identifier examplecluster --db-user alice --db-name dev --region us-east-1 \
    -- pgcli "$@"
}

# One query, no prompt, then exit. -w: never ask for a password. Note that pgcli
# prints SQL errors on stdout and still exits 0; only connection failures exit 1.
#   rpgcli -w -t -c 'select current_user'
