-- Signed-in reads where the path goes with its reader: each line is "<path>\t<bearer token>"
-- (a customer asking for a board they are ranked on). Each connection walks the lines from its
-- own random start. args: <file of lines> <think ms>
local pairs_

init = function(args)
   pairs_ = {}
   for _, line in ipairs(read_lines(args[1])) do
      local path, token = line:match("^([^\t]+)\t(.+)$")
      table.insert(pairs_, {path, token})
   end
   think_ms = tonumber(args[2] or "0")
   math.randomseed(os.time() * 1000 + (id or 0))
   nxt = math.random(#pairs_)
end

request = function()
   local p = pairs_[nxt]
   nxt = nxt % #pairs_ + 1
   return wrk.format("GET", p[1], {["Authorization"] = "Bearer " .. p[2]})
end
