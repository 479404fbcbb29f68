/**
 * The DSN texts mailgate ships, in the template file format (header lines, a blank line, the
 * body). A site overrides any of them with `<name>.txt` in its template directory.
 */

const strike3 = `Subject: Please confirm you sent mail to %(receiver)s

This is an automatic message from the mail server %(receiver)s.

THIS IS A WARNING ONLY. Your message has not been refused, and you do
not need to send it again.

We received a message that gives this address, %(sender)s, as its sender.
The server that delivered it showed none of the usual signs of speaking
for your domain: your domain publishes no SPF record, the server did not
greet us with a valid host name (HELO), and its address has no valid
reverse DNS (PTR) name. Forged mail looks exactly like that, so we are
writing to this address to make sure it exists.

The message in question:

  Subject: %(subject)s
  Received-SPF: %(spf_result)s
  Recipients:
    %(rcpt)s

If you sent it, nothing more is needed. To stop this happening again,
please ask whoever runs your outgoing mail server to publish an SPF
record for your domain, to greet other servers with a host name that
resolves to the server's address, and to give that address a PTR name.

If you did not send it, someone has used your address; you can ignore
this notice.

postmaster@%(receiver)s
`;

const softfail = `Subject: Possible forgery of your address (SPF %(result)s)

This is an automatic message from the mail server %(receiver)s.

THIS IS A WARNING ONLY. You do not need to send your message again.

A message giving %(sender)s as its sender came from a server that your
domain's SPF record does not list as one of its own: the SPF result was
"%(result)s". Your domain asks for such mail to be treated with
suspicion, so we are telling you about it.

The message in question:

  Subject: %(subject)s
  Received-SPF: %(spf_result)s
  Recipients:
    %(rcpt)s

If you sent it, you may be sending through a server your SPF record
leaves out (a mail service used while travelling, say). Please ask the
administrator of your domain to add it, or send through your own
domain's servers.

If you did not send it, your address has been forged and you can ignore
this notice.

postmaster@%(receiver)s
`;

const neutral = `Subject: Your SPF record does not vouch for your mail (SPF neutral)

This is an automatic message from the mail server %(receiver)s.

THIS IS A WARNING ONLY. You do not need to send your message again.

A message giving %(sender)s as its sender came from a server about which
your domain's SPF record says nothing either way (the result was
"neutral"). We cannot tell such mail from forgeries, so we are writing
to this address to make sure the message really came from you.

The message in question:

  Subject: %(subject)s
  Received-SPF: %(spf_result)s
  Recipients:
    %(rcpt)s

If you sent it, nothing more is needed. Your domain's administrator can
avoid these notices by listing your outgoing servers in the SPF record
and ending it with "-all" or "~all" rather than "?all".

If you did not send it, someone has used your address; you can ignore
this notice.

postmaster@%(receiver)s
`;

const permerror = `Subject: Your SPF record has an error

This is an automatic message from the mail server %(receiver)s.

THIS IS A WARNING ONLY. You do not need to send your message again.

A message giving %(sender)s as its sender arrived here, but the SPF
record of your domain could not be evaluated as published, because of
this permanent error:

  %(perm_error)s

We read the record leniently this time, as many receivers will not.
Please pass this notice to the administrator of your domain so that
the record can be corrected; until then, other receivers may reject
or mistrust mail from your domain.

The message in question:

  Subject: %(subject)s
  Received-SPF: %(spf_result)s
  Recipients:
    %(rcpt)s

postmaster@%(receiver)s
`;

const quarantine = `Subject: Your message is being held as possible spam

This is an automatic message from the mail server %(receiver)s.

Your message has NOT been delivered yet. It is being held for review
because it looked like spam. Please do not simply send it again: a
copy would most likely be held in the same way.

The message in question:

  Subject: %(subject)s
  Received-SPF: %(spf_result)s
  Recipients:
    %(rcpt)s

If it is a genuine message, reply to this notice and say so; the
postmaster will review it and release it. If you did not send it,
someone has used your address, and you can ignore this notice.

postmaster@%(receiver)s
`;

/** The built-in templates by name, as file text. */
export const BUILTIN_TEMPLATE_TEXT = {
  strike3,
  softfail,
  neutral,
  permerror,
  quarantine,
} as const;
