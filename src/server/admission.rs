//! Connection admission: how many connections one client may hold open at once.
//!
//! The accept loop takes a global slot (`ServerOptions::max_connections`) before `accept`, so
//! a client that opens sockets and sends nothing could hold every slot until the header
//! timeout and starve everyone else. Each accepted connection must also take a slot of its
//! client; a connection beyond `max_connections_per_client` is closed at once, before any
//! byte is read, so one client can hold at most that many of the global slots.
//!
//! Invariants:
//! - a client is its IP address; an IPv6 client is its /64 (one subscriber's prefix, which
//!   it can fill with addresses at will); an IPv4-mapped IPv6 address is its IPv4 address;
//! - a slot is given back when its [`ClientSlot`] is dropped (the connection ended, however),
//!   and a client with no slot left has no entry, so the table holds only open connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Who a connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Prefix([u8; 8]),
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    let mut p = [0u8; 8];
                    p.copy_from_slice(&o[..8]);
                    ClientKey::V6Prefix(p)
                }
            },
        }
    }
}

/// Open connections per client.
pub struct ClientCounts {
    cap: usize,
    open: Mutex<HashMap<ClientKey, usize>>,
}

/// One open connection of a client; gives its slot back when dropped.
pub struct ClientSlot {
    counts: Arc<ClientCounts>,
    key: ClientKey,
}

impl ClientCounts {
    pub fn new(cap: usize) -> Arc<ClientCounts> {
        Arc::new(ClientCounts {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a connection from `ip`, or None when that client has `cap` open already.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = ClientKey::of(ip);
        let mut open = self.open.lock();
        let n = open.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            counts: Arc::clone(self),
            key,
        })
    }

    /// Connections open from `ip`'s client.
    pub fn open(&self, ip: IpAddr) -> usize {
        self.open
            .lock()
            .get(&ClientKey::of(ip))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_cap_and_release() {
        let c = ClientCounts::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = c.admit(a).unwrap();
        let _s2 = c.admit(a).unwrap();
        assert!(c.admit(a).is_none());
        assert!(c.admit(b).is_some());
        drop(s1);
        assert_eq!(c.open(a), 1);
        assert!(c.admit(a).is_some());
        // One /64 is one client; a v4-mapped address is its v4 address.
        let x: IpAddr = "2001:db8::1".parse().unwrap();
        let y: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let _x1 = c.admit(x).unwrap();
        let _y1 = c.admit(y).unwrap();
        assert!(c.admit(x).is_none());
        let m: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        assert_eq!(ClientKey::of(m), ClientKey::of(b));
    }
}
