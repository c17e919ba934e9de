-- Order placement: POST /v1/orders with a real customer's bearer token and a fresh
-- Idempotency-Key per order; 1-3 lines of 1-3 units from the stocked SKUs.
-- args: <tokens file> <skus file> <run tag> <think ms>
local tokens, skus, tag
local n = 0

init = function(args)
   tokens = read_lines(args[1])
   skus = read_lines(args[2])
   tag = args[3]
   think_ms = tonumber(args[4] or "0")
   math.randomseed(os.time() * 1000 + (id or 0))
end

request = function()
   n = n + 1
   local lines, used = {}, {}
   for _ = 1, math.random(3) do
      local sku = skus[math.random(#skus)]
      if not used[sku] then
         used[sku] = true
         table.insert(lines, string.format('{"sku":"%s","quantity":%d}', sku, math.random(3)))
      end
   end
   local headers = {
      ["Authorization"] = "Bearer " .. tokens[math.random(#tokens)],
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = string.format("%s-%d-%d", tag, id or 0, n),
   }
   return wrk.format("POST", "/v1/orders", headers, '{"lines":[' .. table.concat(lines, ",") .. ']}')
end
