#!/bin/sh
set -e
export AWS_ACCESS_KEY_ID=AKIAWRBAMQ3UZX2JAD7R
export AWS_SECRET_ACCESS_KEY=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
pg_dump "postgres://backup:RMeQPpfGa00hx#42@db.internal/shop" | gzip > /backup/shop.sql.gz
