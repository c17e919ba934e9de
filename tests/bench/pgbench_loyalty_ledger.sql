-- The points ledger row an award writes (loyalty.service.post for an order's delivery, kind
-- 'earn') as plain SQL for pgbench: the database's bare limit for awards, one INSERT per
-- transaction, statement for statement what SQLAlchemy sends for it (ON CONFLICT on the unique
-- source, RETURNING the id). The customers are the benchmark's (`md5('loyalty-bench-' || n)`,
-- made by tests/bench/bench_loyalty.py); the order id is made from the script's variables and
-- the source is `earn:<order id>`, as an award's (never a colon before a letter in a string:
-- pgbench would take it for a variable). Runs with `-M prepared` as Kirana's driver does.
\set u random(0, :customers - 1)
\set r random(1, 1000000000000)
INSERT INTO loyalty_ledger (user_id, kind, points, source, order_id, lot_id, store_code, city, board_at,
                            reason, actor_id, created_at)
  VALUES (md5('loyalty-bench-' || :u::text)::uuid, 'earn', 37, 'earn:' || md5('pgb-' || :client_id::text || '-' || :r::text)::uuid::text,
          md5('pgb-' || :client_id::text || '-' || :r::text)::uuid, NULL, 'main', 'bengaluru', now(), NULL, NULL, now())
  ON CONFLICT (source) DO NOTHING RETURNING loyalty_ledger.id;
