-- SPDX-License-Identifier: GPL-2.0-only
--
-- A wrk script for scripts/httpd-vs-nginx.sh: counts the connections the
-- servers closed under wrk's feet.
--
-- wrk reconnects at once when a server closes a keep-alive connection, and
-- counts the close only as a "read" socket error (EOF or a reset while
-- waiting for a response; a malformed response counts there too) or a
-- "write" one (the request could not be sent), and not at all when the
-- response said "Connection: close". So both servers say, in the header
-- X-Connection-Requests, how many requests the connection has carried:
-- every response that says 1 is the first on a connection, and every
-- connection past wrk's own -c was opened again after a close.
--
-- Prints one line: "wrk-closes: key=value ...".

local threads = {}

function setup(thread)
	table.insert(threads, thread)
end

function init(args)
	opened = 0	-- responses with X-Connection-Requests: 1
	announced = 0	-- responses with Connection: close
	unmarked = 0	-- responses without the header
end

function response(status, headers, body)
	local n = headers["X-Connection-Requests"]

	if n == nil then
		unmarked = unmarked + 1
	elseif n == "1" then
		opened = opened + 1
	end
	if headers["Connection"] == "close" then
		announced = announced + 1
	end
end

function done(summary, latency, requests)
	local opened, announced, unmarked = 0, 0, 0
	local e = summary.errors

	for _, t in ipairs(threads) do
		opened = opened + t:get("opened")
		announced = announced + t:get("announced")
		unmarked = unmarked + t:get("unmarked")
	end
	io.write(string.format("wrk-closes: requests=%d duration_us=%d " ..
		"opened=%d announced=%d unmarked=%d connect=%d read=%d " ..
		"write=%d timeout=%d status=%d latency_max_us=%d " ..
		"latency_p99_us=%d\n",
		summary.requests, summary.duration, opened, announced,
		unmarked, e.connect, e.read, e.write, e.timeout, e.status,
		latency.max, latency:percentile(99)))
end
