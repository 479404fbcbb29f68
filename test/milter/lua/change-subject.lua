-- End of message: the first Subject becomes `[sample] <old subject>`; nothing else is touched.
dofile((lua_dir or "test/milter/lua") .. "/common.lua")

run(function()
  local conn = open_session()
  send_message(conn, {
    { "From", "<sender@client.example.net>" },
    { "Subject", "quarterly report" },
    { "Subject", "a second subject" },
  })
  end_message(conn)
  check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[sample] quarterly report"),
    "Subject was not changed to '[sample] quarterly report'")
  check(not mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[sample] a second subject"),
    "the second Subject was changed; only the first should be")
  check(mt.eom_check(conn, MT_HDRADD, "X-Sample-Milter", CLIENT_IP), "X-Sample-Milter missing")
  check(not mt.eom_check(conn, MT_HDRDELETE), "a header was deleted")
  check(not mt.eom_check(conn, MT_BODYCHANGE), "the body was replaced unasked")
  check(not mt.eom_check(conn, MT_QUARANTINE), "the message was quarantined unasked")

  -- The next message on the same connection starts afresh: its own Subject, not the last one.
  mt.abort(conn)
  send_message(conn, { { "Subject", "next one" } })
  end_message(conn)
  check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[sample] next one"),
    "second message: Subject not changed to '[sample] next one'")
  check(not mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[sample] quarterly report"),
    "second message: the first message's Subject leaked into it")
  mt.disconnect(conn)
end)
