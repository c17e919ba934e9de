-- The order placement of POST /v1/orders as plain SQL for pgbench (the database's bare limit):
-- the idempotency claim committed on its own, then one transaction that locks two stocked
-- variants in id order, decrements them, writes the order, its lines and history, the sync
-- changes and outbox event, stores the response under the key and commits. Statement for
-- statement what Kirana sends; `pgbench_hot` numbers the stocked SKUs (made by the benchmark).
\set a random(1, :hot)
\set b random(1, :hot)
\set r random(1, 1000000000000)
INSERT INTO idempotency_keys (id, owner, key, fingerprint, method, path, state, locked_at, created_at, expires_at)
  VALUES (gen_random_uuid(), 'user:pgbench', 'pgb-' || :client_id::text || '-' || :r::text, md5(:r::text) || md5(:a::text), 'POST', '/v1/orders', 'running', now(), now(), now() + interval '24 hours')
  ON CONFLICT (owner, key) DO NOTHING RETURNING id AS claim_id \gset
BEGIN;
SELECT v.id, v.product_id, v.sku, v.attributes, v.price_paise, v.mrp_paise, v.tax_class, v.stock, v.is_active, p.is_published, p.title
  FROM catalog_variants v JOIN catalog_products p ON p.id = v.product_id
  WHERE v.sku IN (SELECT sku FROM pgbench_hot WHERE n IN (:a, :b)) ORDER BY v.id FOR UPDATE OF v;
UPDATE catalog_variants SET stock = stock - 1, updated_at = now() WHERE sku IN (SELECT sku FROM pgbench_hot WHERE n IN (:a, :b));
INSERT INTO orders (id, user_id, store_code, status, currency, subtotal_paise, mrp_total_paise, tax_paise, total_paise, item_count, shipping_address, reservation_expires_at, paid_at, closed_at)
  VALUES (gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'main', 'pending_payment', 'INR', 10000, 12000, 500, 10500, 2, NULL, now() + interval '15 minutes', NULL, NULL)
  RETURNING id AS order_id, number, created_at, updated_at \gset
INSERT INTO order_lines (id, order_id, variant_id, product_id, sku, title, attributes, quantity, unit_price_paise, unit_mrp_paise, tax_rate_percent, tax_paise, line_total_paise)
  SELECT gen_random_uuid(), ':order_id'::uuid, v.id, v.product_id, v.sku, 'Bench product', v.attributes, 1, v.price_paise, v.mrp_paise, 5, 250, v.price_paise
  FROM catalog_variants v WHERE v.sku IN (SELECT sku FROM pgbench_hot WHERE n IN (:a, :b));
INSERT INTO order_events (order_id, from_status, to_status, actor_id, actor_kind, reason, created_at)
  VALUES (':order_id'::uuid, NULL, 'pending_payment', '00000000-0000-4000-8000-000000000001', 'customer', NULL, now()) RETURNING id;
INSERT INTO sync_changes (entity, entity_id, user_id, deleted, created_at)
  VALUES ('order', ':order_id'::uuid, '00000000-0000-4000-8000-000000000001', false, now());
INSERT INTO sync_changes (entity, entity_id, user_id, deleted, created_at)
  SELECT 'product', v.product_id, NULL, false, now() FROM catalog_variants v WHERE v.sku IN (SELECT sku FROM pgbench_hot WHERE n IN (:a, :b));
INSERT INTO outbox_events (topic, key, payload)
  VALUES ('order.placed', ':order_id'::uuid, jsonb_build_object('order_id', ':order_id'::uuid, 'number', :number::bigint, 'store_code', 'main', 'total_paise', 10500));
UPDATE idempotency_keys SET state = 'done', response_status = 201, response_body = convert_to(repeat('x', 1400), 'UTF8'), response_headers = '{"content-type": "application/json"}'
  WHERE id = ':claim_id'::uuid;
COMMIT;
