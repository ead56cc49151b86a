// Finding the links that carry default routes by the kernel's lookup, one per link and family,
// instead of reading the routing table (src/netlink/route.ts defaultRoutesThrough): the same
// answer as iproute2's view of the main table, with the routing table read only where a lookup
// cannot tell, and then only the routes of that link.
import t from 'tap';
import { netnsPath, Sandbox, shOk } from '../helpers/sandbox';
import { uniqueName } from '../helpers/names';
import { defaultRoutesThrough } from '../../src/netlink/route';
import { listLinks } from '../../src/netlink/link';
import { Netns } from '../../src/netns/netns';
import type { RequestContext } from '../../src/netlink/client';

t.test('default routes by lookup: second metrics, IPv6, a probe covered by a /1, other tables, none', async (t) => {
  const sb = new Sandbox(t);
  const ns = sb.createNetns('dflt');
  const ip = (...args: string[]) => shOk('ip', ['-n', ns, ...args]);
  const link = (role: string, cidr: string) => {
    const name = uniqueName(role);
    sb.createVethPair(ns, name, uniqueName('p'));
    ip('addr', 'add', cidr, 'dev', name, ...(cidr.includes(':') ? ['nodad'] : []));
    return name;
  };
  const first = link('first', '10.1.0.1/24');
  ip('route', 'add', 'default', 'via', '10.1.0.2', 'dev', first);
  const backup = link('backup', '10.2.0.1/24');
  ip('route', 'add', 'default', 'via', '10.2.0.2', 'dev', backup, 'metric', '600');
  // A VPN's way of overriding the default route: the probe matches a /1, not the default behind it.
  const vpn = link('vpn', '10.3.0.1/24');
  ip('route', 'add', '0.0.0.0/1', 'via', '10.3.0.2', 'dev', vpn);
  ip('route', 'add', '128.0.0.0/1', 'via', '10.3.0.2', 'dev', vpn);
  ip('route', 'add', 'default', 'via', '10.3.0.2', 'dev', vpn, 'metric', '900');
  const six = link('six', '2001:db8:d::1/64');
  ip('-6', 'route', 'add', 'default', 'via', '2001:db8:d::2', 'dev', six, 'metric', '300');
  const plain = link('plain', '10.5.0.1/24');
  ip('route', 'add', '192.0.2.0/24', 'via', '10.5.0.2', 'dev', plain);
  const other = link('other', '10.6.0.1/24');
  ip('route', 'add', 'default', 'via', '10.6.0.2', 'dev', other, 'table', '100');
  shOk('ip', ['-n', ns, '-batch', '-'], { input: Array.from({ length: 200 }, (_, i) => `route add 172.16.${i}.0/24 via 10.5.0.2 dev ${plain}\n`).join('') });

  const handle = Netns.open(netnsPath(ns));
  const sock = handle.socket();
  t.teardown(() => {
    sock.close();
    handle.close();
  });
  const links = listLinks(sock);
  const byName = new Map(links.map((l) => [l.name, l.index]));
  // iproute2's view of the main table: the reference.
  const reference = (['-4', '-6'] as const).flatMap((f) => (JSON.parse(ip('-j', f, 'route', 'show', 'table', 'main', 'default')) as { dev: string }[])
    .map((r) => `${f === '-4' ? 'IPv4' : 'IPv6'} ${r.dev}`));
  t.same(reference.sort(), [`IPv4 ${backup}`, `IPv4 ${first}`, `IPv4 ${vpn}`, `IPv6 ${six}`].sort(), 'the set-up is as meant');

  const dumps: RequestContext[] = [];
  const dump = sock.dump.bind(sock);
  sock.dump = (msg, ctx) => {
    dumps.push(ctx);
    return dump(msg, ctx);
  };
  const found = defaultRoutesThrough(sock, links.map((l) => l.index));
  const names = new Map([...byName].map(([n, i]) => [i, n]));
  t.same(found.map((d) => `${d.family === 2 ? 'IPv4' : 'IPv6'} ${names.get(d.index)}`).sort(), reference.sort(), 'the same links as iproute2 shows');
  t.same(dumps.map((c) => c.device), [`#${byName.get(vpn)}`], 'the routing table is read only for the link whose lookup matched a /1, and only its routes');
  t.same(defaultRoutesThrough(sock, [byName.get(plain)!, byName.get(other)!]), [], 'none through a link with other routes only, or a default route in another table');
});
