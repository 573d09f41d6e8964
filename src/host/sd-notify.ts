// sd_notify(3) for a daemon run by systemd with Type=notify: READY=1 once start-up recovery is
// done, STOPPING=1 when shutdown begins, STATUS= lines between. Node cannot send on a unix
// datagram socket, so a one-shot perl (perl-base is on every Debian system; the spawn helper and
// the attach relay use it too) sends the message. It then lingers a moment: systemd attributes a
// notification to the unit of the sender's pid, which it cannot look up once the sender is gone
// (the race `systemd-notify` is known for); the unit sets NotifyAccess=all for such senders.
// Without $NOTIFY_SOCKET (not started by systemd) nothing is sent.
import { start } from './run.js';

const SEND = `
use Socket;
my ($path, $msg) = @ARGV;
$path =~ s/^@/\\0/;
socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or exit 1;
send($s, $msg, 0, pack_sockaddr_un($path)) or exit 2;
sleep 2;
`;

/** Sends `state` (lines such as READY=1, STATUS=...) to systemd; resolves once it is sent. */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const socket = env['NOTIFY_SOCKET'];
  if (!socket) return Promise.resolve(false);
  const { child, exited } = start('perl', ['-e', SEND, socket, `${state}\nMAINPID=${process.pid}`], { stdio: 'ignore' });
  child.unref();
  // perl exits non-zero at once when it cannot send; otherwise it is sleeping after the send.
  let sent: NodeJS.Timeout | undefined;
  return Promise.race([
    exited.then((code) => code === 0, () => false),
    new Promise<boolean>((resolve) => (sent = setTimeout(() => resolve(true), 200))),
  ]).finally(() => clearTimeout(sent));
}
