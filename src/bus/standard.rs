//! The standard interfaces at sottod's object — `org.freedesktop.DBus.Peer`,
//! `Introspectable` and `Properties` — served by sottod in place of zbus's
//! built-in ones, so that every call to the object, not only `org.sotto.Sotto1`'s
//! methods, is charged to its sender's [`Budget`]. A client reading `State` or
//! introspecting in a loop is refused like one calling `GetStats` in a loop.
//! They answer as zbus's own do: the same introspection (built once: the object
//! never changes), the same values and the same error names.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use zbus::message::Header;
use zbus::names::InterfaceName;
use zbus::object_server::{Interface, SignalEmitter};
use zbus::{fdo, interface, BoxDBusError, Connection, ObjectServer};
use zbus::{OwnedVariant, Variant};

use super::{Sotto1, PATH};
use crate::ratelimit::{RateLimiter, Verdict, CALLS_PER_SECOND};

/// Every sender's budget of calls to the object, shared by its interfaces.
#[derive(Debug, Default)]
pub struct Budget {
    limiter: Mutex<RateLimiter>,
    /// Calls refused with `LimitsExceeded`.
    limited: AtomicU64,
}

impl Budget {
    /// Admits a call within its sender's budget; over it, the call fails with
    /// `org.freedesktop.DBus.Error.LimitsExceeded` once the sender's next call
    /// would be admitted (see [`crate::ratelimit`]).
    pub async fn admit(&self, header: &Header<'_>) -> fdo::Result<()> {
        let sender = header.sender().map(|s| s.as_str()).unwrap_or("");
        let limiter = || self.limiter.lock().unwrap_or_else(|e| e.into_inner());
        let verdict = limiter().check(sender, Instant::now());
        let Verdict::Refuse { hold } = verdict else {
            return Ok(());
        };
        self.limited.fetch_add(1, Ordering::Relaxed);
        if !hold.is_zero() {
            // Released even if this call's task is dropped mid-wait.
            struct Held<'a>(&'a Mutex<RateLimiter>, &'a str);
            impl Drop for Held<'_> {
                fn drop(&mut self) {
                    self.0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .released(self.1);
                }
            }
            let _held = Held(&self.limiter, sender);
            tokio::time::sleep(hold).await;
        }
        Err(fdo::Error::LimitsExceeded(format!(
            "{sender} made more than {CALLS_PER_SECOND} calls per second; call less often"
        )))
    }

    /// Calls refused so far.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }
}

/// The names of the interfaces zbus adds to every object.
pub const REPLACED: [&str; 3] = [
    "org.freedesktop.DBus.Peer",
    "org.freedesktop.DBus.Introspectable",
    "org.freedesktop.DBus.Properties",
];

/// `org.freedesktop.DBus.Peer`, at the root object: zbus sends every Peer
/// call there, whatever its path (D-Bus says Peer works on any path).
pub struct Peer(Arc<Budget>);

#[interface(name = "org.freedesktop.DBus.Peer", introspection_docs = false)]
impl Peer {
    async fn ping(&self, #[zbus(header)] header: Header<'_>) -> fdo::Result<()> {
        self.0.admit(&header).await
    }

    async fn get_machine_id(&self, #[zbus(header)] header: Header<'_>) -> fdo::Result<String> {
        self.0.admit(&header).await?;
        ["/var/lib/dbus/machine-id", "/etc/machine-id"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|id| id.trim_end().to_string())
            .ok_or_else(|| fdo::Error::IOError("this machine has no machine-id".into()))
    }
}

/// `org.freedesktop.DBus.Introspectable`: the object's XML, written once by
/// [`install`].
pub struct Introspectable {
    budget: Arc<Budget>,
    xml: String,
}

#[interface(
    name = "org.freedesktop.DBus.Introspectable",
    introspection_docs = false
)]
impl Introspectable {
    async fn introspect(&self, #[zbus(header)] header: Header<'_>) -> fdo::Result<String> {
        self.budget.admit(&header).await?;
        Ok(self.xml.clone())
    }
}

/// Serves the budgeted standard interfaces in place of zbus's at every
/// object from the root down to [`PATH`], where [`Sotto1`] is served already.
/// Each object's introspection is written here, once.
pub async fn install(server: &ObjectServer, budget: &Arc<Budget>) -> zbus::Result<()> {
    let mut sotto = String::new();
    server
        .interface::<_, Sotto1>(PATH)
        .await?
        .get()
        .await
        .introspect_to_writer(&mut sotto, 2);
    // "/", "/org", "/org/sotto", PATH.
    let mut paths = vec!["/".to_string()];
    for (i, _) in PATH.match_indices('/').skip(1) {
        paths.push(PATH[..i].to_string());
    }
    paths.push(PATH.to_string());
    for (i, path) in paths.iter().enumerate() {
        let child = paths.get(i + 1).and_then(|c| c.rsplit('/').next());
        let peer = Peer(budget.clone());
        let properties = Properties {
            budget: budget.clone(),
            sotto: child.is_none(),
        };
        let mut introspectable = Introspectable {
            budget: budget.clone(),
            xml: String::new(),
        };
        let mut xml = String::from(
            "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n",
        );
        peer.introspect_to_writer(&mut xml, 2);
        introspectable.introspect_to_writer(&mut xml, 2);
        properties.introspect_to_writer(&mut xml, 2);
        match child {
            Some(child) => xml.push_str(&format!("  <node name=\"{child}\"/>\n")),
            None => xml.push_str(&sotto),
        }
        xml.push_str("</node>\n");
        introspectable.xml = xml;
        for name in REPLACED {
            let name = InterfaceName::from_static_str_unchecked(name);
            server.remove_named(path.as_str(), name).await?;
        }
        server.at(path.as_str(), introspectable).await?;
        server.at(path.as_str(), properties).await?;
        if path == "/" {
            server.at(path.as_str(), peer).await?;
        }
    }
    Ok(())
}

/// `org.freedesktop.DBus.Properties`: only `org.sotto.Sotto1` has any.
pub struct Properties {
    budget: Arc<Budget>,
    /// At sottod's object (not one of the objects above it).
    sotto: bool,
}

/// What a property call names.
enum Target {
    Sotto1,
    /// A standard interface: it has no properties.
    Standard,
}

fn target(interface: &InterfaceName<'_>, sotto: bool) -> fdo::Result<Target> {
    if sotto && interface.as_str() == super::NAME {
        Ok(Target::Sotto1)
    } else if REPLACED.contains(&interface.as_str()) {
        Ok(Target::Standard)
    } else {
        Err(fdo::Error::UnknownInterface(format!(
            "Unknown interface '{interface}'"
        )))
    }
}

fn unknown(property: &str) -> BoxDBusError {
    Box::new(fdo::Error::UnknownProperty(format!(
        "Unknown property '{property}'"
    )))
}

impl Properties {
    /// A `Get` or `Set` of `property` on `interface`, charged to the sender:
    /// its value (`None`: no such property).
    async fn read(
        &self,
        interface: &InterfaceName<'_>,
        property: &str,
        connection: &Connection,
        server: &ObjectServer,
        header: &Header<'_>,
        emitter: &SignalEmitter<'_>,
    ) -> Result<Option<Result<OwnedVariant, BoxDBusError>>, BoxDBusError> {
        self.budget.admit(header).await?;
        if let Target::Standard = target(interface, self.sotto)? {
            return Ok(None);
        }
        let sotto = server.interface::<_, Sotto1>(PATH).await?;
        let sotto = sotto.get().await;
        Ok(Interface::get(&*sotto, property, server, connection, Some(header), emitter).await)
    }
}

#[interface(name = "org.freedesktop.DBus.Properties", introspection_docs = false)]
impl Properties {
    async fn get(
        &self,
        interface_name: InterfaceName<'_>,
        property_name: &str,
        #[zbus(connection)] connection: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedVariant, BoxDBusError> {
        self.read(
            &interface_name,
            property_name,
            connection,
            server,
            &header,
            &emitter,
        )
        .await?
        .unwrap_or_else(|| Err(unknown(property_name)))
    }

    /// Every property is read-only.
    #[allow(clippy::too_many_arguments)]
    async fn set(
        &self,
        interface_name: InterfaceName<'_>,
        property_name: &str,
        value: Variant<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BoxDBusError> {
        drop(value);
        let read = self.read(
            &interface_name,
            property_name,
            connection,
            server,
            &header,
            &emitter,
        );
        match read.await? {
            Some(_) => Err(Box::new(fdo::Error::PropertyReadOnly(format!(
                "Property '{property_name}' is read-only"
            )))),
            None => Err(unknown(property_name)),
        }
    }

    async fn get_all(
        &self,
        interface_name: InterfaceName<'_>,
        #[zbus(connection)] connection: &Connection,
        #[zbus(object_server)] server: &ObjectServer,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> fdo::Result<HashMap<String, OwnedVariant>> {
        self.budget.admit(&header).await?;
        if let Target::Standard = target(&interface_name, self.sotto)? {
            return Ok(HashMap::new());
        }
        let sotto = server.interface::<_, Sotto1>(PATH).await?;
        let sotto = sotto.get().await;
        Interface::get_all(&*sotto, server, connection, Some(&header), &emitter).await
    }

    #[zbus(signal)]
    async fn properties_changed(
        emitter: &SignalEmitter<'_>,
        interface_name: InterfaceName<'_>,
        changed_properties: HashMap<&str, Variant<'_>>,
        invalidated_properties: Cow<'_, [&str]>,
    ) -> zbus::Result<()>;
}
