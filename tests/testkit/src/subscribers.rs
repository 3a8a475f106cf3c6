//! Many clients hearing sottod at once: each of `n` connections subscribes to
//! its `Transcript` signal on the real bus and keeps the texts it hears.

use futures_util::StreamExt;
use zbus::message::Type;
use zbus::{MatchRule, MessageStream};

/// Subscribers hearing transcripts until [`Subscribers::finish`].
pub struct Subscribers {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<Vec<Vec<String>>>,
}

impl Subscribers {
    /// `n` connections to the bus at `address`, each subscribed to
    /// `org.sotto.Sotto1.Transcript`. Returns once every subscription is in
    /// place (the bus has acknowledged each match rule).
    pub fn start(address: &str, n: usize) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let address = address.to_string();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("subscribers' runtime");
            runtime.block_on(async move {
                let rule = MatchRule::builder()
                    .msg_type(Type::Signal)
                    .interface("org.sotto.Sotto1")
                    .member("Transcript")
                    .build()
                    .expect("a match rule");
                let mut streams = Vec::new();
                for _ in 0..n {
                    let connection = zbus::connection::Builder::address(address.as_str())
                        .build()
                        .await
                        .expect("connect to the test bus");
                    let stream = MessageStream::for_match_rule(rule.clone(), &connection, None)
                        .await
                        .expect("subscribe");
                    streams.push((connection, stream));
                }
                ready_tx.send(()).expect("the test waits");
                let heard = streams.into_iter().map(|(connection, mut stream)| {
                    let mut stopped = stopped.clone();
                    tokio::spawn(async move {
                        let _connection = connection;
                        let mut texts = Vec::new();
                        loop {
                            tokio::select! {
                                Some(Ok(msg)) = stream.next() => {
                                    if let Ok((_, text, ..)) =
                                        msg.body().deserialize::<(u64, String, u64, u64, f64, u32)>()
                                    {
                                        texts.push(text);
                                    }
                                }
                                _ = stopped.changed() => return texts,
                            }
                        }
                    })
                });
                let tasks: Vec<_> = heard.collect();
                let mut all = Vec::new();
                for t in tasks {
                    all.push(t.await.expect("subscriber task"));
                }
                all
            })
        });
        ready.recv().expect("subscribers started");
        Self { stop, thread }
    }

    /// Ends every subscription; what each subscriber heard, in order.
    pub fn finish(self) -> Vec<Vec<String>> {
        let _ = self.stop.send(true);
        self.thread.join().expect("subscribers' thread")
    }
}
