-- RCPT TO <later@...> is tempfailed with a custom reply (`451 4.7.1 try later`; miltertest shows
-- only that a custom reply came, so the text is checked by test/milter/miltertest.test.ts). Other
-- recipients of the same message are accepted, and the message goes through.
dofile((lua_dir or "test/milter/lua") .. "/common.lua")

run(function()
  local conn = open_session()
  step("mailfrom", SMFIR_CONTINUE, mt.mailfrom, conn, "<sender@client.example.net>")
  step("rcptto <someone@...>", SMFIR_CONTINUE, mt.rcptto, conn, "<someone@example.org>")
  step("rcptto <later@...>", SMFIR_REPLYCODE, mt.rcptto, conn, "<later@example.org>")
  step("rcptto <Later@...> (case)", SMFIR_REPLYCODE, mt.rcptto, conn, "<Later@example.net>")
  step("rcptto <latest@...>", SMFIR_CONTINUE, mt.rcptto, conn, "<latest@example.org>")
  step("data", SMFIR_CONTINUE, mt.data, conn)
  step("header", SMFIR_CONTINUE, mt.header, conn, "Subject", "some recipients later")
  step("eoh", SMFIR_CONTINUE, mt.eoh, conn)
  step("body", SMFIR_CONTINUE, mt.bodystring, conn, "Hello.\r\n")
  end_message(conn)
  check(mt.eom_check(conn, MT_HDRADD, "X-Sample-Milter", CLIENT_IP), "X-Sample-Milter missing")
  check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[sample] some recipients later"),
    "Subject was not changed")
  mt.disconnect(conn)
end)
