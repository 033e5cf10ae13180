# psql on Redshift with a fresh IAM password: source this from ~/.bashrc or ~/.zshrc, then run `rpsql` (psql's own arguments pass through).
rpsql() {
  redshift-creds exec --cluster-identifier examplecluster --db-user alice --db-name dev --region us-east-1 \
    -- psql "$@"
}

# The same as an alias; arguments after it go to psql: `psql-dev -c 'select current_user'`.
alias psql-dev='redshift-creds exec --cluster-identifier examplecluster --db-user alice --db-name dev --region us-east-1 -- psql'
