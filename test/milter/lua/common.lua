-- Shared helpers for the miltertest scripts that exercise examples/sample-milter.ts.
--
-- Each script is run as
--   miltertest -D socket=inet:PORT@127.0.0.1 -D lua_dir=test/milter/lua -s test/milter/lua/NAME.lua
-- (test/milter/miltertest.test.ts does this against a sample milter it starts). A script puts its
-- body in `run(function() ... end)`; a Lua error inside fails it: `run` prints the message and a
-- traceback (miltertest itself exits 1 without saying why) and miltertest exits with status 1.
--
-- miltertest quirks this file works around (OpenDKIM miltertest 1.6.0, Debian bookworm):
-- * mt.negotiate's code takes (conn, version, protocol steps, actions) although the manual says
--   (conn, version, actions, steps); `open` below passes them in the order the code reads.
-- * Replies before end of message are seen only as their command byte (mt.getreply); their text
--   is dropped, so a custom reply at MAIL or RCPT can be checked only as SMFIR_REPLYCODE.
-- * MT_HDRCHANGE with an index argument compares the value to the wrong argument; pass only the
--   name and the value.

if socket == nil then
  error("no socket: run with -D socket=inet:PORT@HOST")
end

-- What Postfix 3.x offers: protocol version 6, every action, every protocol step flag.
MTA_VERSION = 6
MTA_ACTIONS = 0x1FF
MTA_STEPS = 0x1FFFFF

-- The client every script pretends to be.
CLIENT_HOST = "client.example.net"
CLIENT_IP = "192.0.2.25"

-- Run a script's body; on error print why (with a traceback) and fail the script.
function run(body)
  local ok, err = xpcall(body, debug.traceback)
  if not ok then
    mt.echo("FAIL: " .. tostring(err))
    error(err, 0)
  end
end

function check(condition, message)
  if not condition then
    error(message, 2)
  end
end

local reply_names = {}
for _, name in ipairs({ "SMFIR_CONTINUE", "SMFIR_ACCEPT", "SMFIR_REJECT", "SMFIR_TEMPFAIL",
  "SMFIR_DISCARD", "SMFIR_REPLYCODE", "SMFIR_SKIP" }) do
  if _G[name] ~= nil then
    reply_names[math.floor(_G[name])] = name
  end
end

local function reply_name(code)
  if code == nil then
    return "nil"
  end
  local n = math.floor(code)
  local name = reply_names[n]
  if name ~= nil then
    return name
  end
  if n > 32 and n < 127 then
    return string.format("'%s' (%d)", string.char(n), n)
  end
  return tostring(n)
end

-- Call a step (mt.helo, mt.mailfrom, ...), fail if miltertest reports an error, and check the
-- milter's reply when `expected` is given.
function step(label, expected, fn, ...)
  local err = fn(...)
  if err ~= nil then
    error(label .. ": " .. tostring(err), 2)
  end
  if expected ~= nil then
    local conn = ...
    local got = mt.getreply(conn)
    if got ~= expected then
      error(string.format("%s: expected %s, got %s", label, reply_name(expected), reply_name(got)), 2)
    end
  end
end

-- Connect and negotiate as Postfix does.
function open()
  local conn = mt.connect(socket)
  if conn == nil then
    error("mt.connect(" .. socket .. ") failed", 2)
  end
  local err = mt.negotiate(conn, MTA_VERSION, MTA_STEPS, MTA_ACTIONS)
  if err ~= nil then
    error("mt.negotiate: " .. tostring(err), 2)
  end
  return conn
end

-- Connect, negotiate, and send the connection information and HELO.
function open_session(helo)
  local conn = open()
  step("conninfo", SMFIR_CONTINUE, mt.conninfo, conn, CLIENT_HOST, CLIENT_IP)
  step("helo", SMFIR_CONTINUE, mt.helo, conn, helo or "mail.client.example.net")
  return conn
end

-- One whole message from MAIL FROM to end of body; `headers` is a list of {name, value}.
-- Leaves the connection ready for mt.eom.
function send_message(conn, headers, body)
  step("mailfrom", SMFIR_CONTINUE, mt.mailfrom, conn, "<sender@client.example.net>")
  step("rcptto", SMFIR_CONTINUE, mt.rcptto, conn, "<someone@example.org>")
  step("data", SMFIR_CONTINUE, mt.data, conn)
  for _, h in ipairs(headers) do
    step("header " .. h[1], SMFIR_CONTINUE, mt.header, conn, h[1], h[2])
  end
  step("eoh", SMFIR_CONTINUE, mt.eoh, conn)
  step("body", SMFIR_CONTINUE, mt.bodystring, conn, body or "Hello.\r\n")
end

-- End the message and check that the milter let it through.
function end_message(conn)
  step("eom", SMFIR_CONTINUE, mt.eom, conn)
end
