-- End of message: every message gets `X-Sample-Milter: <client ip>`, with the address from the
-- connection information, IPv4 and IPv6 alike; one header per message, not per recipient.
dofile((lua_dir or "test/milter/lua") .. "/common.lua")

run(function()
  for _, ip in ipairs({ CLIENT_IP, "2001:db8::25" }) do
    local conn = open()
    step("conninfo " .. ip, SMFIR_CONTINUE, mt.conninfo, conn, CLIENT_HOST, ip)
    step("helo", SMFIR_CONTINUE, mt.helo, conn, "mail.client.example.net")
    step("mailfrom", SMFIR_CONTINUE, mt.mailfrom, conn, "<sender@client.example.net>")
    step("rcptto 1", SMFIR_CONTINUE, mt.rcptto, conn, "<one@example.org>")
    step("rcptto 2", SMFIR_CONTINUE, mt.rcptto, conn, "<two@example.org>")
    step("header", SMFIR_CONTINUE, mt.header, conn, "From", "<sender@client.example.net>")
    step("eoh", SMFIR_CONTINUE, mt.eoh, conn)
    step("body", SMFIR_CONTINUE, mt.bodystring, conn, "No subject here.\r\n")
    end_message(conn)

    check(mt.eom_check(conn, MT_HDRADD, "X-Sample-Milter", ip),
      "X-Sample-Milter: " .. ip .. " was not added")
    check(mt.getheader(conn, "X-Sample-Milter", 0) == ip, "first X-Sample-Milter is not " .. ip)
    check(mt.getheader(conn, "X-Sample-Milter", 1) == nil, "X-Sample-Milter added more than once")
    -- Without a Subject there is nothing to change, and nothing else happens.
    check(not mt.eom_check(conn, MT_HDRCHANGE), "a header was changed, but there was no Subject")
    check(not mt.eom_check(conn, MT_BODYCHANGE), "the body was replaced unasked")
    check(not mt.eom_check(conn, MT_QUARANTINE), "the message was quarantined unasked")
    mt.disconnect(conn)
  end
end)
