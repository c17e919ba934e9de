-- Razorpay webhooks: POST /v1/webhooks/razorpay with prepared, signed events, each sent once
-- (in file order, round robin; past the end they repeat and are answered as duplicates).
-- args: <file with one "event id<TAB>signature<TAB>body" per line>
local events
local n = 0

init = function(args)
   events = {}
   for _, line in ipairs(read_lines(args[1])) do
      local id, sig, body = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
      table.insert(events, {id, sig, body})
   end
end

request = function()
   n = n + 1
   local e = events[(n - 1) % #events + 1]
   local headers = {
      ["Content-Type"] = "application/json",
      ["X-Razorpay-Event-Id"] = e[1],
      ["X-Razorpay-Signature"] = e[2],
   }
   return wrk.format("POST", "/v1/webhooks/razorpay", headers, e[3])
end
