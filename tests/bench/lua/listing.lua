-- Catalog listing pages: GET one of the prepared listing URLs at random.
-- args: <file with one path?query per line> <think ms>
local paths

init = function(args)
   paths = read_lines(args[1])
   think_ms = tonumber(args[2] or "0")
   math.randomseed(os.time() * 1000 + (id or 0))
end

request = function()
   return wrk.format("GET", paths[math.random(#paths)])
end
