-- The order placement of POST /v1/orders as plain SQL for pgbench (the database's bare limit
-- for one order per transaction), statement for statement what Kirana sends for a batch of one
-- (written for a single row where Kirana unnests arrays): claim the Idempotency-Key (advisory
-- lock + insert), lock two stocked variants in id order, write stock, order, lines, history,
-- sync changes and outbox event in one statement, store the response under the key, commit. `pgbench_hot` numbers the stocked SKUs (made by the benchmark). Runs with
-- `-M prepared` as Kirana's driver does (asyncpg prepares every statement once per connection);
-- the ids are made from the script's variables, so no result has to be spliced into SQL text.
\set a random(1, :hot)
\set b random(1, :hot)
\set r random(1, 1000000000000)
BEGIN;
WITH turn AS (SELECT pg_try_advisory_xact_lock(hashtextextended('pgb-' || :client_id::text || '-' || :r::text, 0)) AS got),
new AS (
  INSERT INTO idempotency_keys (id, owner, key, fingerprint, method, path, state, locked_at, created_at, expires_at)
  SELECT md5('k-' || :client_id::text || '-' || :r::text)::uuid, 'user-pgbench', 'pgb-' || :client_id::text || '-' || :r::text,
         md5(:r::text) || md5(:a::text),
         'POST', '/v1/orders', 'running', now(), now(), now() + interval '24 hours'
  FROM turn WHERE got
  ON CONFLICT (owner, key) DO NOTHING
  RETURNING id)
SELECT (SELECT got FROM turn) AS got, (SELECT id FROM new) AS claim_id;
SELECT v.id, v.product_id, v.sku, v.price_paise, v.mrp_paise, v.tax_class, v.stock,
       v.is_active AND p.is_published AS sellable, p.title, v.attributes
  FROM catalog_variants v JOIN catalog_products p ON p.id = v.product_id
  WHERE v.sku = ANY(ARRAY(SELECT sku FROM pgbench_hot WHERE n IN (:a, :b)))
  ORDER BY v.id FOR UPDATE OF v;
WITH wanted AS (
  SELECT v.id AS variant_id, 1 AS quantity, v.price_paise AS unit_price, v.mrp_paise AS unit_mrp,
         5 AS tax_rate, 250::bigint AS tax, v.price_paise AS total
  FROM catalog_variants v WHERE v.sku = ANY(ARRAY(SELECT sku FROM pgbench_hot WHERE n IN (:a, :b)))
), stock AS (
  UPDATE catalog_variants v SET stock = v.stock - w.quantity, updated_at = now()
  FROM wanted w WHERE v.id = w.variant_id
), placed AS (
  INSERT INTO orders (id, user_id, store_code, status, currency, subtotal_paise, mrp_total_paise, tax_paise,
                      total_paise, item_count, shipping_address, reservation_expires_at)
  VALUES (md5('o-' || :client_id::text || '-' || :r::text)::uuid, '00000000-0000-4000-8000-000000000001', 'main', 'pending_payment', 'INR', 10000,
          12000, 500, 10500, 2, NULL, now() + interval '15 minutes')
  RETURNING number, created_at, updated_at, reservation_expires_at
), lines AS (
  INSERT INTO order_lines (id, order_id, variant_id, product_id, sku, title, attributes, quantity,
                           unit_price_paise, unit_mrp_paise, tax_rate_percent, tax_paise, line_total_paise)
  SELECT gen_random_uuid(), md5('o-' || :client_id::text || '-' || :r::text)::uuid, v.id, v.product_id, v.sku, p.title, v.attributes,
         w.quantity, w.unit_price, w.unit_mrp, w.tax_rate, w.tax, w.total
  FROM wanted w JOIN catalog_variants v ON v.id = w.variant_id JOIN catalog_products p ON p.id = v.product_id
), history AS (
  INSERT INTO order_events (order_id, from_status, to_status, actor_id, actor_kind, created_at)
  VALUES (md5('o-' || :client_id::text || '-' || :r::text)::uuid, NULL, 'pending_payment', '00000000-0000-4000-8000-000000000001', 'customer', now())
), changes AS (
  INSERT INTO sync_changes (entity, entity_id, user_id, deleted, created_at)
  SELECT 'order', md5('o-' || :client_id::text || '-' || :r::text)::uuid, '00000000-0000-4000-8000-000000000001'::uuid, false, now()
  UNION ALL
  SELECT DISTINCT 'product', v.product_id, NULL::uuid, false, now()
  FROM wanted w JOIN catalog_variants v ON v.id = w.variant_id
), event AS (
  INSERT INTO outbox_events (topic, key, payload)
  SELECT 'order.placed', md5('o-' || :client_id::text || '-' || :r::text), jsonb_build_object(
         'order_id', md5('o-' || :client_id::text || '-' || :r::text), 'number', number,
         'user_id', '00000000-0000-4000-8000-000000000001', 'store_code', 'main', 'total_paise', 10500,
         'reservation_expires_at', reservation_expires_at)
  FROM placed
)
SELECT number, created_at, updated_at, reservation_expires_at FROM placed;
UPDATE idempotency_keys
  SET state = 'done', response_status = 201, response_body = convert_to(repeat('x', 1400), 'UTF8'),
      response_headers = '{"content-type": "application/json"}'::jsonb
  WHERE id = md5('k-' || :client_id::text || '-' || :r::text)::uuid;
COMMIT;
