-- Catalog listing pages: GET one of the prepared listing URLs at random.
-- args: <file with one path?query per line> <think ms> [<tokens file>: sign each request in]
local paths, tokens

init = function(args)
   paths = read_lines(args[1])
   think_ms = tonumber(args[2] or "0")
   if args[3] and #args[3] > 0 then tokens = read_lines(args[3]) end
   math.randomseed(os.time() * 1000 + (id or 0))
end

request = function()
   local headers = {}
   if tokens then headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)] end
   return wrk.format("GET", paths[math.random(#paths)], headers)
end
