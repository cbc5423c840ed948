//! A notification receiver for tests: a plain HTTP/1.1 server on a
//! loopback port the kernel picks, keeping every request it is sent and
//! answering each with a status and body the test sets.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::Instant,
};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When the body was read in full.
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Debug)]
struct State {
    received: Vec<Received>,
    answer: (u16, String),
    /// Requests still to hold unanswered until their sender goes away.
    to_hold: usize,
    held: Vec<Received>,
}

/// The receiver; it serves until the test ends.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Listens on loopback, answering 200 with `answer` until told otherwise.
    pub fn start(answer: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State {
            received: Vec::new(),
            answer: (200, answer.to_owned()),
            to_hold: 0,
            held: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { addr, state }
    }

    /// A receiver that accepts connections and never answers.
    pub fn hanging() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("its address");
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers every later request with `status` and `body`.
    pub fn answer(&self, status: u16, body: &str) {
        self.state.lock().expect("lock").answer = (status, body.to_owned());
    }

    /// What it answered (a held request is not: its sender never heard back).
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("lock").received.clone()
    }

    /// Holds the next request unanswered until its sender goes away (a
    /// notification in flight when its replica dies): it is then
    /// forgotten, never counted as received.
    pub fn hold_next(&self) {
        self.state.lock().expect("lock").to_hold += 1;
    }

    /// The requests held, answered never.
    pub fn held(&self) -> Vec<Received> {
        self.state.lock().expect("lock").held.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut writer = stream;
    // Keep-alive: one request after another on the connection.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Received {
            method,
            target,
            headers,
            body,
            at: Instant::now(),
        };
        let (status, answer) = {
            let mut state = state.lock().expect("lock");
            if state.to_hold > 0 {
                state.to_hold -= 1;
                state.held.push(request);
                drop(state);
                // Until the sender closes the connection (or dies).
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
                return;
            }
            state.received.push(request);
            state.answer.clone()
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
