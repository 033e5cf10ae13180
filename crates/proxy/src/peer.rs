//! Who is on the other end of a connection: the peer's uid from SO_PEERCRED (Unix sockets)
//! or from /proc/net/tcp{,6} (loopback TCP on Linux), and the rule on who may connect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `uid` may use the proxy: it is one of `allowed` (by default the proxy's own uid
/// and root).
pub(crate) fn is_allowed(uid: u32, allowed: &[u32]) -> bool {
    allowed.contains(&uid)
}

/// The uid that owns the TCP socket at `peer` connected to `local`: by exact lookup over
/// netlink, else from /proc/net/tcp (IPv4) and /proc/net/tcp6 (IPv6 and v4-mapped). None
/// when nothing matches (the peer already gone, or neither source available).
pub(crate) fn tcp_peer_uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let (p, l) = (canonical(peer), canonical(local));
    let family = if p.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    crate::sock_diag::uid(p, l, family)
        // An IPv4 peer may be a dual-stack IPv6 socket using a v4-mapped address.
        .or_else(|| {
            p.is_ipv4()
                .then(|| crate::sock_diag::uid(p, l, libc::AF_INET6))
                .flatten()
        })
        .or_else(|| proc_net_uid(peer, local))
}

/// The /proc/net/tcp{,6} fallback of [`tcp_peer_uid`].
fn proc_net_uid(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find_map(|table| find_uid(&table, peer, local))
}

/// In a /proc/net/tcp or tcp6 table, the uid of the socket whose local address is `peer`
/// and whose remote address is `local` (the peer's side of our connection).
pub(crate) fn find_uid(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let (peer, local) = (canonical(peer), canonical(local));
    table.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let row_local = parse_addr(cols.nth(1)?)?;
        let row_remote = parse_addr(cols.next()?)?;
        if row_local != peer || row_remote != local {
            return None;
        }
        // st, tx_queue:rx_queue, tr:tm->when, retrnsmt, then uid.
        cols.nth(4)?.parse().ok()
    })
}

/// An address with v4-mapped IPv6 turned into IPv4, so both tables compare alike.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Parses `0100007F:1F90` (IPv4) or 32 hex digits + `:PORT` (IPv6): the address is
/// hex of the in-memory bytes, read as native-endian 32-bit words; the port is plain hex.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

/// The effective uid of this process.
pub(crate) fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real lines (x86_64, little-endian): psql as uid 1000 at 127.0.0.1:41234 connected to a
    // proxy at 127.0.0.1:15439 run by root, and the proxy's accepted socket.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:3C4F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A112 0100007F:3C4F 01 00000000:00000000 00:00000000 00000000  1000        0 123457 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:3C4F 0100007F:A112 01 00000000:00000000 00:00000000 00000000     0        0 123458 1 0000000000000000 20 4 31 10 -1
";
    // IPv6 loopback ([::1]:41234 -> [::1]:15439) and a v4-mapped client.
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:A112 00000000000000000000000001000000:3C4F 01 00000000:00000000 00:00000000 00000000  1001        0 222 1 0000000000000000 20 4 30 10 -1
   1: 0000000000000000FFFF00000100007F:A113 0000000000000000FFFF00000100007F:3C4F 01 00000000:00000000 00:00000000 00000000  1002        0 223 1 0000000000000000 20 4 30 10 -1
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_the_peer_row_in_tcp() {
        let peer = sa("127.0.0.1:41234");
        let local = sa("127.0.0.1:15439");
        assert_eq!(find_uid(TCP, peer, local), Some(1000));
        // Our own accepted socket (local = proxy) must not be taken for the peer.
        assert_eq!(find_uid(TCP, local, peer), Some(0));
        assert_eq!(find_uid(TCP, sa("127.0.0.1:41235"), local), None);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_the_peer_row_in_tcp6() {
        assert_eq!(
            find_uid(TCP6, sa("[::1]:41234"), sa("[::1]:15439")),
            Some(1001)
        );
        assert_eq!(
            find_uid(TCP6, sa("127.0.0.1:41235"), sa("127.0.0.1:15439")),
            Some(1002)
        );
        assert_eq!(
            find_uid(TCP6, sa("[::ffff:127.0.0.1]:41235"), sa("127.0.0.1:15439")),
            Some(1002)
        );
    }

    #[test]
    fn allows_only_listed_uids() {
        assert!(is_allowed(0, &[1000, 0]));
        assert!(is_allowed(1000, &[1000, 0]));
        assert!(!is_allowed(1001, &[1000, 0]));
        assert!(!is_allowed(0, &[1000]));
    }

    #[test]
    fn finds_a_live_connection_of_our_own() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        assert_eq!(tcp_peer_uid(peer, l.local_addr().unwrap()), Some(own_uid()));
        assert_eq!(proc_net_uid(peer, l.local_addr().unwrap()), Some(own_uid()));
    }
}
