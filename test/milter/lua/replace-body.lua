-- End of message: a Subject containing `replace-body` gets the body replaced by `replaced\r\n`.
dofile((lua_dir or "test/milter/lua") .. "/common.lua")

run(function()
  local conn = open_session()
  send_message(conn, { { "Subject", "please replace-body now" } },
    "The original body.\r\nSecond line.\r\n")
  end_message(conn)
  check(mt.eom_check(conn, MT_BODYCHANGE), "the body was not replaced")
  check(mt.eom_check(conn, MT_BODYCHANGE, "replaced\r\n"), "the new body is not 'replaced\\r\\n'")
  check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[sample] please replace-body now"),
    "Subject was not changed")
  check(mt.eom_check(conn, MT_HDRADD, "X-Sample-Milter", CLIENT_IP), "X-Sample-Milter missing")
  check(not mt.eom_check(conn, MT_QUARANTINE), "the message was quarantined unasked")

  -- A plain Subject on the same connection keeps its body.
  mt.abort(conn)
  send_message(conn, { { "Subject", "keep my body" } }, "Keep this.\r\n")
  end_message(conn)
  check(not mt.eom_check(conn, MT_BODYCHANGE), "second message: the body was replaced unasked")
  mt.disconnect(conn)
end)
