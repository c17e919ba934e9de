-- Shared by the commerce wrk scripts: print the figures as one JSON line that Python parses.
threads = {}

setup = function(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"mean_us":%.1f,"status_errors":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
      e.status, e.connect, e.read, e.write, e.timeout))
end

-- Optional think time (paced runs): mean milliseconds between a client's requests, exponential.
think_ms = 0
delay = function()
   if think_ms <= 0 then return 0 end
   return -math.log(1 - math.random()) * think_ms
end

local function read_lines(path)
   local out = {}
   for line in io.lines(path) do
      if #line > 0 then table.insert(out, line) end
   end
   return out
end
