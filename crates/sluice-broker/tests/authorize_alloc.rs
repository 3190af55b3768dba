//! The produce/fetch path calls `Authorizer::authorize` once per topic: it must not allocate.
//! A counting global allocator (this test binary only) checks that, with literal, prefixed,
//! wildcard, host and DENY entries in the index. Only allocations of the measuring thread count:
//! the test harness allocates on its own threads meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use sluice_broker::auth::{
    AclBinding, Authorizer, AuthorizerConfig, KafkaPrincipal, Operation, PatternType, Permission,
    ResourceType,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on the thread whose allocations are being counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the allocator also runs while thread-locals are torn down.
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn binding(
    name: &str,
    pattern: PatternType,
    principal: &str,
    host: &str,
    op: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: name.to_owned(),
        pattern_type: pattern,
        principal: principal.to_owned(),
        host: host.to_owned(),
        operation: op,
        permission,
    }
}

#[test]
fn authorize_does_not_allocate() {
    let authorizer = Authorizer::in_memory(&AuthorizerConfig {
        super_users: vec!["User:admin".into()],
        allow_everyone_if_no_acl_found: false,
    });
    let mut acls = vec![
        binding(
            "orders",
            PatternType::Literal,
            "User:CN=orders-svc",
            "*",
            Operation::Write,
            Permission::Allow,
        ),
        binding(
            "orders.",
            PatternType::Prefixed,
            "User:CN=orders-svc",
            "*",
            Operation::Write,
            Permission::Allow,
        ),
        binding(
            "orders.secret",
            PatternType::Prefixed,
            "User:*",
            "*",
            Operation::All,
            Permission::Deny,
        ),
        binding(
            "*",
            PatternType::Literal,
            "User:CN=reader",
            "127.0.0.1",
            Operation::Read,
            Permission::Allow,
        ),
    ];
    acls.extend((0..200).map(|i| {
        binding(
            &format!("t{i}"),
            PatternType::Literal,
            "User:x",
            "*",
            Operation::Read,
            Permission::Allow,
        )
    }));
    assert!(authorizer.create(acls).iter().all(Result::is_ok));
    let orders = KafkaPrincipal::user("CN=orders-svc");
    let reader = KafkaPrincipal::user("CN=reader");
    let host = IpAddr::V4(Ipv4Addr::LOCALHOST);

    // One call first: the index's lock-free reader sets up per-thread state on a thread's
    // first load, once, which is not a per-request cost.
    authorizer.authorize(
        &orders,
        host,
        Operation::Write,
        ResourceType::Topic,
        "orders",
    );

    COUNTING.with(|c| c.set(true));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut allowed = 0;
    for _ in 0..1000 {
        allowed += usize::from(authorizer.authorize(
            &orders,
            host,
            Operation::Write,
            ResourceType::Topic,
            "orders",
        ));
        allowed += usize::from(authorizer.authorize(
            &orders,
            host,
            Operation::Write,
            ResourceType::Topic,
            "orders.eu",
        ));
        allowed += usize::from(!authorizer.authorize(
            &orders,
            host,
            Operation::Write,
            ResourceType::Topic,
            "orders.secret.x",
        ));
        allowed += usize::from(authorizer.authorize(
            &reader,
            host,
            Operation::Describe,
            ResourceType::Topic,
            "t7",
        ));
        allowed += usize::from(!authorizer.authorize(
            &reader,
            host,
            Operation::Write,
            ResourceType::Group,
            "g",
        ));
    }
    let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
    COUNTING.with(|c| c.set(false));
    assert_eq!(allowed, 5000, "the decisions themselves must be right");
    assert_eq!(
        allocated, 0,
        "authorize() allocated {allocated} times in 5000 calls"
    );
}
