=pod

=encoding utf8

=head1 NAME

Test::KafkaProducer::Load - a bounded, non-blocking HTTP load generator for
the process-fault tests, and the accounting of every request it made

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::KafkaProducer;
    use Test::KafkaProducer::Load;

    # in a --- test_code section
    my $run = load_run(port => nginx_port(), concurrency => 32,
                       keepalive => 16, max_requests => 20000, max_time => 30,
                       request => sub { my ($seq) = @_; return { ... } },
                       tick => sub { my ($run) = @_; ...; return $stop });
    my $st = load_status(nginx_port(), [ map { $_->{location} } ... ]);
    load_account(run => $run, topic => 'load-reload', ...);

=head1 DESCRIPTION

C<load_run> keeps C<concurrency> requests in flight against 127.0.0.1 with
non-blocking sockets and C<IO::Select>, from one process, until C<max_requests>
requests were issued, C<max_time> seconds have passed or C<tick> asks it to
stop; then it waits for the requests in flight (each attempt is bounded by
C<answer_timeout>). Nothing is left open when it returns.

Connections: the first C<keepalive> slots reuse their connection (HTTP/1.1
keep-alive), the others send C<Connection: close>. As HTTP clients do, a
request is retried on a fresh connection only when it was written on a
REUSED keep-alive connection and the connection was closed (EOF, reset,
EPIPE) before a single byte of the answer arrived: nginx closes idle
keep-alive connections when a worker is told to exit. Every attempt carries
C<try=N> in its query string (the module ignores unknown parameters), so the
access log proves which attempts nginx read. Nothing else is retried.

Outcome of a request (its last attempt):

=over

=item answered

A complete HTTP response (status, headers, body).

=item refused

connect() failed with ECONNREFUSED: the request was never sent.

=item noresponse

The request was written on a fresh connection, which was closed or reset
without a byte of answer, or the connection was reset before the request
could be written (it was still in the listen queue of a closing socket). C<load_account> accepts it only as "not accepted
by nginx" when the access log has no line for any of its attempts and Kafka
has no record for its eventId, and only when allowed (e.g. connections left in
the listen queue when nginx quits are reset by the kernel).

=item partial, timeout, error

Part of an answer, no answer within C<answer_timeout>, any other socket
error: always unaccounted.

=back

=head1 FUNCTIONS

=over

=item load_run(%opt)

Options: C<port>, C<request> (sub, called with the sequence number 1, 2, ...;
returns a hash ref with C<method> (default POST), C<uri>, C<event_id> and
anything else, kept in the result; or undef for "no more"), C<concurrency>
(32), C<keepalive> (slots with keep-alive, default 0), C<max_requests>
(10000), C<max_time> (seconds, 60), C<rate> (at most this many new
requests per second on average, default no limit), C<answer_timeout> (seconds per attempt,
30), C<tick> (sub called every C<tick_interval> seconds, default 0.02, with
the run; a true return value stops issuing new requests), C<try_param> (add
C<&try=N>, default 1), C<max_tries> (3).

Returns the run: a hash ref with C<requests> (array of request hashes:
the generator's fields plus C<seq>, C<outcome>, C<status>, C<headers>
(lower-case names), C<body>, C<t_start>, C<t_sent>, C<t_end>, C<pid> (the
C<X-Worker> header, if any), C<attempts> (C<try>, C<reused>, C<outcome>,
C<error>, C<bytes>, times)), C<t0>, C<t_end>, C<issued>, C<retries>,
C<in_flight()> (the number of requests written and not yet answered; usable in
C<tick>).

=item load_status($port, \@uris, %opt)

GETs every URI once, C<concurrency> (default 32) at a time; returns a hash
ref URI =E<gt> request hash (as above).

=item load_access_log($file)

Reads an access log in nginx's default (combined) format and returns a hash
ref "eventId try" =E<gt> count (and "eventId" =E<gt> count) of the send
requests nginx logged.

=item load_account(%opt)

Accounts for every request of a run and asserts it (Test::More): see the
header comment of t/050-reload-load.t for the rules. Options: C<run>, C<topic>,
C<records> (from C<kafka_records>), C<statuses> (from C<load_status>, or undef
when the status zone cannot be asked any more, e.g. after nginx has quit: a
202 is then accounted for by its record alone), C<access> (from
C<load_access_log>), C<allow_refused>, C<allow_not_accepted>, C<label>,
C<mock_no_dedupe> (a delivered idempotent send may be in the topic more than
once: after a broker loss the producer resends with the same sequence number
and librdkafka's mock cluster, which de-duplicates only transactional
producers, appends it again; such duplicates are counted, not failed).
Returns a hash ref of figures (also printed with C<diag>).

=back

=cut

package Test::KafkaProducer::Load;

use strict;
use warnings;

use Exporter 'import';
use Errno ();
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK);
use IO::Select;
use JSON::PP ();
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_ERROR IPPROTO_TCP
              TCP_NODELAY pack_sockaddr_in inet_aton);
use Test::More ();
use Time::HiRes qw(time);

our @EXPORT = qw(load_run load_status load_access_log load_account);

my $JSON = JSON::PP->new->utf8->allow_nonref->canonical;
my $UUID_RE = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
my $TS_RE   = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

# ---------------------------------------------------------------------------
# the load generator
# ---------------------------------------------------------------------------

sub load_run {
    my (%o) = @_;
    my $port        = $o{port} or die "load_run: port expected\n";
    my $gen         = $o{request} or die "load_run: request generator expected\n";
    my $conc        = $o{concurrency} // 32;
    my $ka          = $o{keepalive} // 0;
    my $max_req     = $o{max_requests} // 10000;
    my $max_time    = $o{max_time} // 60;
    my $ans_timeout = $o{answer_timeout} // 30;
    my $tick        = $o{tick};
    my $tick_iv     = $o{tick_interval} // 0.02;
    my $try_param   = $o{try_param} // 1;
    my $max_tries   = $o{max_tries} // 3;
    my $rate        = $o{rate};

    my $addr = pack_sockaddr_in($port, inet_aton('127.0.0.1'));
    my %run = (requests => [], issued => 0, retries => 0, t0 => time,
               sent_open => 0);
    $run{in_flight} = sub { $run{sent_open} };
    my @slots = map { { idx => $_, keepalive => $_ < $ka ? 1 : 0,
                        state => 'idle' } } 0 .. $conc - 1;
    my $stop = 0;
    my $no_more = 0;
    my $next_tick = 0;

    my $start_attempt;    # ($slot, $req)
    my $finish;           # ($slot, $outcome, $error)

    my $close_sock = sub {
        my ($slot) = @_;
        if ($slot->{sock}) {
            close $slot->{sock};
            delete $slot->{sock};
        }
        $slot->{served} = 0;
    };

    $finish = sub {
        my ($slot, $outcome, $error) = @_;
        my $req = $slot->{req};
        my $att = $slot->{attempt};
        $att->{outcome} = $outcome;
        $att->{error} = $error if defined $error;
        $att->{t_end} = time;
        $att->{bytes} = length($slot->{rbuf} // '');
        $run{sent_open}-- if $att->{t_sent};
        my $keep = 0;
        if ($outcome eq 'answered') {
            @$req{qw(status headers body)} = @{ $slot->{resp} }{qw(status headers body)};
            $req->{pid} = $req->{headers}{'x-worker'};
            $keep = $slot->{keepalive} && !$slot->{resp}{close};
        }
        my $retry = $outcome eq 'noresponse' && $att->{reused}
                    && @{ $req->{attempts} } < $max_tries;
        if ($keep) {
            $slot->{served}++;
        }
        else {
            $close_sock->($slot);
        }
        delete @$slot{qw(rbuf wbuf woff resp attempt)};
        if ($retry) {
            $run{retries}++;
            $att->{retried} = 1;
            $start_attempt->($slot, $req);
            return;
        }
        $req->{outcome} = $outcome;
        $req->{error} = $error if defined $error;
        $req->{t_end} = $att->{t_end};
        $req->{t_sent} = $att->{t_sent};
        $slot->{state} = 'idle';
        delete $slot->{req};
    };

    $start_attempt = sub {
        my ($slot, $req) = @_;
        my $try = @{ $req->{attempts} } + 1;
        my $uri = $req->{uri};
        if ($try_param) {
            $uri .= ($uri =~ /\?/ ? '&' : '?') . "try=$try";
        }
        my $method = $req->{method} // 'POST';
        my $wbuf = "$method $uri HTTP/1.1\r\nHost: localhost\r\n";
        $wbuf .= "Connection: close\r\n" unless $slot->{keepalive};
        $wbuf .= "Content-Length: 0\r\n" if $method eq 'POST';
        $wbuf .= "\r\n";
        my $att = { try => $try, t_start => time, reused => 0 };
        push @{ $req->{attempts} }, $att;
        $req->{t_start} //= $att->{t_start};
        @$slot{qw(req attempt wbuf woff rbuf)} = ($req, $att, $wbuf, 0, '');
        $slot->{deadline} = $att->{t_start} + $ans_timeout;
        if ($slot->{sock}) {
            $att->{reused} = $slot->{served};
            $slot->{state} = 'writing';
            return;
        }
        my $s;
        unless (socket($s, PF_INET, SOCK_STREAM, 0)) {
            $finish->($slot, 'error', "socket: $!");
            return;
        }
        my $fl = fcntl($s, F_GETFL, 0);
        fcntl($s, F_SETFL, $fl | O_NONBLOCK);
        setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
        binmode $s;
        $slot->{sock} = $s;
        $slot->{served} = 0;
        if (connect($s, $addr)) {
            $slot->{state} = 'writing';
        }
        elsif ($!{EINPROGRESS} || $!{EAGAIN}) {
            $slot->{state} = 'connecting';
        }
        elsif ($!{ECONNREFUSED}) {
            $finish->($slot, 'refused', "connect: $!");
        }
        else {
            $finish->($slot, 'error', "connect: $!");
        }
    };

    my $on_readable = sub {
        my ($slot) = @_;
        my $n = sysread $slot->{sock}, $slot->{rbuf}, 65536, length $slot->{rbuf};
        if (!defined $n) {
            return if $!{EAGAIN} || $!{EINTR};
            my $err = "read: $!";
            if (!length $slot->{rbuf}) {
                $finish->($slot, 'noresponse', $err);
            }
            else {
                $finish->($slot, _complete($slot, 1) ? 'answered' : 'partial', $err);
            }
            return;
        }
        if ($n == 0) {
            if (!length $slot->{rbuf}) {
                $finish->($slot, 'noresponse', 'connection closed');
            }
            elsif (_complete($slot, 1)) {
                $slot->{resp}{close} = 1;
                $finish->($slot, 'answered');
            }
            else {
                $finish->($slot, 'partial', 'connection closed mid-answer');
            }
            return;
        }
        $finish->($slot, 'answered') if _complete($slot, 0);
    };

    my $on_writable = sub {
        my ($slot) = @_;
        if ($slot->{state} eq 'connecting') {
            my $e = unpack 'i', getsockopt($slot->{sock}, SOL_SOCKET, SO_ERROR) // pack('i', 0);
            if ($e) {
                local $! = $e;
                # a connection reset while connecting was in the listen
                # queue of a socket that closed: nothing was written
                $finish->($slot, $e == Errno::ECONNREFUSED() ? 'refused'
                                 : $e == Errno::ECONNRESET() ? 'noresponse' : 'error',
                          "connect: $!");
                return;
            }
            $slot->{state} = 'writing';
        }
        my $n = syswrite $slot->{sock}, $slot->{wbuf}, length($slot->{wbuf}) - $slot->{woff},
                         $slot->{woff};
        if (!defined $n) {
            return if $!{EAGAIN} || $!{EINTR};
            # nothing of an answer can have arrived before the request was written
            $finish->($slot, 'noresponse', "write: $!");
            return;
        }
        $slot->{woff} += $n;
        if ($slot->{woff} >= length $slot->{wbuf}) {
            $slot->{state} = 'reading';
            $slot->{attempt}{t_sent} = time;
            $run{sent_open}++;
        }
    };

    my $ok = eval {
        while (1) {
            my $now = time;
            if ($tick && $now >= $next_tick) {
                $stop = 1 if $tick->(\%run);
                $next_tick = $now + $tick_iv;
            }
            $stop = 1 if $now - $run{t0} > $max_time;
            for my $slot (@slots) {
                next unless $slot->{state} eq 'idle';
                last if $stop || $no_more || $run{issued} >= $max_req;
                last if $rate && $run{issued} >= $rate * ($now - $run{t0}) + 1;
                my $req = $gen->($run{issued} + 1);
                if (!$req) {
                    $no_more = 1;
                    last;
                }
                $run{issued}++;
                $req->{seq} = $run{issued};
                $req->{attempts} = [];
                push @{ $run{requests} }, $req;
                $start_attempt->($slot, $req);
            }
            my @busy = grep { $_->{state} ne 'idle' } @slots;
            last if !@busy && ($stop || $no_more || $run{issued} >= $max_req);

            my $rsel = IO::Select->new;
            my $wsel = IO::Select->new;
            my %by_fd;
            for my $slot (@busy) {
                $by_fd{ fileno $slot->{sock} } = $slot;
                if ($slot->{state} eq 'reading') { $rsel->add($slot->{sock}) }
                else                             { $wsel->add($slot->{sock}) }
            }
            my $wait = 0.05;
            $wait = $next_tick - time if $tick && $next_tick - time < $wait;
            $wait = 0 if $wait < 0;
            my ($r, $w) = IO::Select->select($rsel, $wsel, undef, $wait);
            for my $fh (@{ $w || [] }) {
                my $slot = $by_fd{ fileno $fh } or next;
                $on_writable->($slot) if $slot->{state} =~ /^(?:connecting|writing)$/;
            }
            for my $fh (@{ $r || [] }) {
                my $slot = $by_fd{ fileno $fh } or next;
                $on_readable->($slot) if $slot->{state} eq 'reading';
            }
            $now = time;
            for my $slot (@busy) {
                next if $slot->{state} eq 'idle' || $now < $slot->{deadline};
                $finish->($slot, 'timeout',
                          sprintf('no complete answer within %gs', $ans_timeout));
            }
        }
        1;
    };
    my $err = $@;
    $close_sock->($_) for @slots;
    die $err unless $ok;
    $run{t_end} = time;
    return \%run;
}

# Is the answer in $slot->{rbuf} complete? ($eof: the peer closed)
sub _complete {
    my ($slot, $eof) = @_;
    my $buf = $slot->{rbuf};
    my $i = index $buf, "\r\n\r\n";
    return 0 if $i < 0;
    my ($line, @lines) = split /\r\n/, substr($buf, 0, $i);
    return 0 unless $line =~ m{^HTTP/(\d\.\d) (\d{3})};
    my ($ver, $status) = ($1, $2);
    my %h;
    for (@lines) {
        next unless /^([^:\s]+):\s*(.*?)\s*$/;
        my $k = lc $1;
        $h{$k} = exists $h{$k} ? "$h{$k}, $2" : $2;
    }
    my $body = substr($buf, $i + 4);
    my $close = ($h{connection} // '') =~ /close/i || $ver eq '1.0';
    if (defined $h{'content-length'}) {
        return 0 if length $body < $h{'content-length'};
        $body = substr($body, 0, $h{'content-length'});
    }
    elsif (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my $out = '';
        pos($body) = 0;
        while (1) {
            return 0 unless $body =~ /\G([0-9A-Fa-f]+)[^\r\n]*\r\n/gc;
            my $size = hex $1;
            if ($size == 0) {
                return 0 unless $body =~ /\G\r\n/gc;
                last;
            }
            my $p = pos $body;
            return 0 if length($body) < $p + $size + 2;
            $out .= substr($body, $p, $size);
            pos($body) = $p + $size + 2;
        }
        $body = $out;
    }
    elsif ($status =~ /^(?:1\d\d|204|304)$/) {
        $body = '';
    }
    else {
        return 0 unless $eof;
        $close = 1;
    }
    $slot->{resp} = { status => $status, headers => \%h, body => $body, close => $close };
    return 1;
}

sub load_status {
    my ($port, $uris, %o) = @_;
    my @todo = @$uris;
    my $run = load_run(port => $port, concurrency => $o{concurrency} // 32,
                       keepalive => $o{concurrency} // 32, try_param => 0,
                       max_requests => scalar(@todo) || 1, max_time => $o{max_time} // 120,
                       answer_timeout => $o{answer_timeout} // 10,
                       request => sub {
                           my ($seq) = @_;
                           return undef if $seq > @todo;
                           return { method => 'GET', uri => $todo[$seq - 1] };
                       });
    return { map { ($_->{uri} => $_) } @{ $run->{requests} } };
}

sub load_access_log {
    my ($file) = @_;
    my %seen;
    open my $fh, '<', $file or return \%seen;
    while (my $line = <$fh>) {
        next unless $line =~ /"[A-Z]+ ([^" ]*) HTTP/;
        my $uri = $1;
        next unless $uri =~ /[?&]eventId=([^&]+)/;
        my $eid = _unescape($1);
        my ($try) = $uri =~ /[?&]try=(\d+)/;
        $seen{$eid}++;
        $seen{"$eid " . ($try // 0)}++;
    }
    return \%seen;
}

sub _unescape {
    my ($s) = @_;
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return $s;
}

# ---------------------------------------------------------------------------
# accounting
# ---------------------------------------------------------------------------

sub _dec { my ($b) = @_; return defined $b && length $b ? eval { $JSON->decode($b) } : undef }

sub _short {
    my ($req) = @_;
    my $att = $req->{attempts}[-1] || {};
    my $body = $req->{body} // '';
    $body = substr($body, 0, 300) . '...' if length $body > 300;
    return sprintf '#%d %s %s -> %s%s%s (tries %d, %.3fs%s)', $req->{seq},
        $req->{method} // 'POST', $req->{uri}, $req->{outcome} // '?',
        defined $req->{status} ? " $req->{status}" : '',
        defined $req->{error} ? " ($req->{error})" : '',
        scalar @{ $req->{attempts} }, ($req->{t_end} // 0) - ($req->{t_start} // 0),
        length $body ? ": $body" : '';
}

# checks the record at a position against the request
sub _record_bad {
    my ($req, $rec, $key) = @_;
    return 'no record' unless $rec;
    my @bad;
    my $p = $rec->{payload_json};
    my $send_mode = $req->{send_mode};
    if (ref $p ne 'HASH') {
        push @bad, 'payload is not JSON';
    }
    else {
        push @bad, "payload eventId '" . ($p->{eventId} // 'undef') . "'"
            if ($p->{eventId} // '') ne $req->{event_id};
        push @bad, "payload mode '" . ($p->{mode} // 'undef') . "'"
            if ($p->{mode} // '') ne $req->{mode};
        push @bad, "payload sendMode '" . ($p->{sendMode} // 'undef') . "'"
            if ($p->{sendMode} // '') ne $send_mode;
        push @bad, 'payload api' if ($p->{api} // '') ne 'nginx';
        push @bad, 'payload ts' unless ($p->{ts} // '') =~ $TS_RE;
    }
    push @bad, "key '" . ($rec->{key} // 'undef') . "', expected '$key'"
        if ($rec->{key} // "\0") ne $key;
    my $h = $rec->{headers_map} || {};
    push @bad, 'header producer-mode' if ($h->{'producer-mode'} // '') ne $req->{mode};
    push @bad, 'header send-mode' if ($h->{'send-mode'} // '') ne $send_mode;
    push @bad, 'header timestamp' unless length($h->{timestamp} // '');
    return @bad ? join(', ', @bad) : undef;
}

sub _is_problem_503 {
    my ($req) = @_;
    my @bad;
    push @bad, 'Content-Type ' . ($req->{headers}{'content-type'} // 'none')
        unless ($req->{headers}{'content-type'} // '') =~ m{^application/problem\+json\b};
    push @bad, 'no Retry-After' unless ($req->{headers}{'retry-after'} // '') =~ /^\d+$/;
    my $j = _dec($req->{body});
    if (ref $j ne 'HASH') {
        push @bad, 'body is not JSON';
    }
    else {
        push @bad, 'type' unless ($j->{type} // '') eq 'about:blank';
        push @bad, 'title' unless ($j->{title} // '') eq 'Service Unavailable';
        push @bad, 'status' unless ($j->{status} // 0) == 503;
        push @bad, 'detail' unless length($j->{detail} // '');
    }
    return (@bad ? join(', ', @bad) : undef, ref $j eq 'HASH' ? $j : {});
}

# a failure after which the record may or may not be in the log
sub _maybe_persisted {
    my ($err) = @_;
    return ($err // '') =~ /(?:TIMED_OUT|_PURGE_INFLIGHT|_DESTROY|_TRANSPORT|_MSG_TIMED_OUT)/;
}

sub load_account {
    my (%o) = @_;
    my $run      = $o{run};
    my $topic    = $o{topic};
    my $statuses = $o{statuses};
    my $access   = $o{access} || {};
    my $label    = $o{label} // 'load';
    my @reqs     = @{ $run->{requests} };

    # the topic as read back
    my (%at, %by_event, %part);
    for my $r (@{ $o{records} }) {
        $at{"$r->{partition}/$r->{offset}"} = $r;
        my $eid = ref $r->{payload_json} eq 'HASH' ? $r->{payload_json}{eventId} // '' : '';
        push @{ $by_event{$eid} }, $r;
        push @{ $part{ $r->{partition} } }, $r->{offset};
    }
    my @holes;
    for my $p (sort keys %part) {
        my @off = sort { $a <=> $b } @{ $part{$p} };
        push @holes, "partition $p: offsets $off[0]..$off[-1], "
                     . scalar(@off) . ' records'
            if $off[0] != 0 || $off[-1] != $#off;
    }
    Test::More::ok(!@holes, "$label: the whole topic $topic was read back (offsets 0..n, no gap)")
        or Test::More::diag(join "\n", @holes);

    my %f = map { ($_ => 0) } qw(sent attempts retries answered 200 202 OK ERROR
        PENDING 503 other refused not_accepted unaccounted records
        plain_duplicates idempotent_duplicates records_of_failed);
    $f{sent} = @reqs;
    $f{retries} = $run->{retries};
    $f{records} = @{ $o{records} };
    my (@unacc, @bad200, @bad202, @bad503, @other, @pending, @count_bad, @orphan,
        @retry_seen, @failed_records);
    my %event;    # eventId -> request
    for my $req (@reqs) {
        $f{attempts} += @{ $req->{attempts} };
        $event{ $req->{event_id} } = $req;
        # every attempt that was retried must not have reached nginx
        for my $att (@{ $req->{attempts} }) {
            next unless $att->{retried};
            push @retry_seen, _short($req) . " (try $att->{try} is in the access log)"
                if $access->{"$req->{event_id} $att->{try}"};
        }
        my $n = @{ $by_event{ $req->{event_id} } || [] };
        my $out = $req->{outcome};
        if ($out eq 'refused') {
            $f{refused}++;
            push @unacc, _short($req) . ' (refused)' unless $o{allow_refused};
            push @count_bad, _short($req) . " ($n records)" if $n;
            $req->{class} = 'refused';
            next;
        }
        if ($out eq 'noresponse') {
            if ($o{allow_not_accepted} && !$access->{ $req->{event_id} } && !$n) {
                $f{not_accepted}++;
                $req->{class} = 'not accepted';
            }
            else {
                push @unacc, _short($req) . ($access->{ $req->{event_id} } ? ' (nginx logged it)' : '')
                    . ($n ? " ($n records)" : '');
            }
            next;
        }
        if ($out ne 'answered') {
            push @unacc, _short($req);
            next;
        }
        $f{answered}++;
        my $st = $req->{status};
        my $j = _dec($req->{body});
        if ($st == 200) {
            $f{200}++;
            my @b;
            if (ref $j ne 'HASH') {
                push @b, 'body is not JSON';
            }
            else {
                for my $k (qw(eventId mode sendMode topic key)) {
                    my %want = (eventId => $req->{event_id}, mode => $req->{mode},
                                sendMode => 'sync', topic => $topic, key => $req->{key});
                    push @b, "$k '" . ($j->{$k} // 'undef') . "'" if ($j->{$k} // '') ne $want{$k};
                }
                if (($j->{partition} // '') !~ /^\d+$/ || ($j->{offset} // '') !~ /^\d+$/) {
                    push @b, 'no partition/offset';
                }
                else {
                    my $e = _record_bad($req, $at{"$j->{partition}/$j->{offset}"}, $req->{key});
                    push @b, "record at $j->{partition}/$j->{offset}: $e" if $e;
                }
            }
            push @bad200, _short($req) . ': ' . join(', ', @b) if @b;
            $req->{class} = 'delivered';
        }
        elsif ($st == 202) {
            $f{202}++;
            my @b;
            my $id = ref $j eq 'HASH' ? $j->{requestId} // '' : '';
            my $loc = $req->{headers}{location} // '';
            push @b, 'body is not JSON' unless ref $j eq 'HASH';
            push @b, "requestId '$id'" unless $id =~ $UUID_RE;
            push @b, "state '" . ($j->{state} // 'undef') . "'"
                if ref $j eq 'HASH' && ($j->{state} // '') ne 'PENDING';
            push @b, "eventId" if ref $j eq 'HASH' && ($j->{eventId} // '') ne $req->{event_id};
            push @b, "Location '$loc'" unless $loc =~ /\?requestId=\Q$id\E$/;
            $req->{location} = $loc;
            if (!$statuses) {
                # the zone is gone: the record in Kafka is the witness
                if ($n) {
                    $f{OK}++;
                    $req->{class} = 'delivered';
                    for my $rec (@{ $by_event{ $req->{event_id} } }) {
                        my $e = _record_bad($req, $rec, $req->{key});
                        push @b, "record at $rec->{partition}/$rec->{offset}: $e" if $e;
                    }
                }
                else {
                    push @b, 'no record with its eventId (and no status zone to ask)';
                }
            }
            else {
                my $s = $statuses->{$loc};
                my $sj = $s ? _dec($s->{body}) : undef;
                if (!$s || ($s->{outcome} // '') ne 'answered' || $s->{status} != 200
                    || ref $sj ne 'HASH')
                {
                    push @b, 'status: ' . ($s ? _short($s) : 'not asked');
                }
                elsif ($sj->{state} eq 'OK') {
                    $f{OK}++;
                    $req->{class} = 'delivered';
                    if (($sj->{partition} // '') !~ /^\d+$/ || ($sj->{offset} // '') !~ /^\d+$/) {
                        push @b, 'OK status without partition/offset';
                    }
                    else {
                        my $e = _record_bad($req, $at{"$sj->{partition}/$sj->{offset}"},
                                            $req->{key});
                        push @b, "record at $sj->{partition}/$sj->{offset}: $e" if $e;
                    }
                }
                elsif ($sj->{state} eq 'ERROR') {
                    $f{ERROR}++;
                    $req->{class} = 'failed';
                    $req->{kafka_error} = $sj->{error};
                    $f{errors}{ $sj->{error} // '' }++;
                    push @b, 'ERROR status without an error text' unless length($sj->{error} // '');
                }
                elsif ($sj->{state} eq 'PENDING') {
                    $f{PENDING}++;
                    push @pending, _short($req) . ': ' . $s->{body};
                }
                else {
                    push @b, "status state '$sj->{state}'";
                }
            }
            push @bad202, _short($req) . ': ' . join(', ', @b) if @b;
        }
        elsif ($st == 503) {
            $f{503}++;
            my ($e, $pj) = _is_problem_503($req);
            push @bad503, _short($req) . ": $e" if $e;
            $req->{class} = 'failed';
            $req->{kafka_error} = $pj->{kafkaError};
            $f{errors}{ '503: ' . ($pj->{detail} // '') }++;
        }
        else {
            $f{other}++;
            push @other, _short($req);
        }

        # how many times the record is in the topic
        my $class = $req->{class} // '';
        if ($class eq 'delivered') {
            if ($req->{mode} eq 'idempotent' && $o{mock_no_dedupe} && $n > 1) {
                # a retry after a broker loss: the mock appends it again
                $f{idempotent_duplicates} += $n - 1;
            }
            elsif ($req->{mode} eq 'idempotent' || @{ $req->{attempts} } > 1) {
                push @count_bad, _short($req) . ": $n records, expected exactly 1" if $n != 1;
            }
            elsif ($n < 1) {
                push @count_bad, _short($req) . ': no record, expected at least 1';
            }
            elsif ($n > 1) {
                $f{plain_duplicates} += $n - 1;
            }
        }
        elsif ($class eq 'failed' && $n) {
            if (_maybe_persisted($req->{kafka_error})) {
                $f{records_of_failed} += $n;
                push @failed_records, _short($req) . ": $n records";
            }
            else {
                push @count_bad, _short($req) . ": $n records for a failed send ("
                    . ($req->{kafka_error} // 'no kafkaError') . ')';
            }
        }
    }
    # every record of the topic must be accounted for by an answer
    for my $eid (sort keys %by_event) {
        my $req = $event{$eid};
        next if $req && ($req->{class} // '') =~ /^(?:delivered|failed)$/;
        push @orphan, scalar(@{ $by_event{$eid} }) . " record(s) with eventId '$eid'"
            . ($req ? ' for ' . _short($req) : ', never sent');
    }
    $f{unaccounted} = @unacc;

    my $show = sub { my @l = @_; splice @l, 20, @l - 20, '...' if @l > 20; join "\n", @l };
    Test::More::is(scalar @unacc, 0, "$label: zero unaccounted requests")
        or Test::More::diag($show->(@unacc));
    Test::More::is(scalar @retry_seen, 0,
                   "$label: retried attempts never reached nginx (not in the access log)")
        or Test::More::diag($show->(@retry_seen));
    Test::More::is(scalar @bad200, 0, "$label: each 200 has its record at its partition/offset")
        or Test::More::diag($show->(@bad200));
    Test::More::is(scalar @bad202, 0, "$label: each 202 reached OK (record at its position) or ERROR")
        or Test::More::diag($show->(@bad202));
    Test::More::is(scalar @pending, 0, "$label: no record is PENDING after the delivery timeout")
        or Test::More::diag($show->(@pending));
    Test::More::is(scalar @bad503, 0, "$label: each 503 is a problem+json with Retry-After")
        or Test::More::diag($show->(@bad503));
    Test::More::is(scalar @other, 0, "$label: no answer other than 200, 202, 503")
        or Test::More::diag($show->(@other));
    Test::More::is(scalar @count_bad, 0,
                   "$label: delivered = exactly once (idempotent) / at least once (plain), "
                   . 'failed = not in the topic unless it may have been persisted')
        or Test::More::diag($show->(@count_bad));
    Test::More::is(scalar @orphan, 0, "$label: no record in the topic without an answer for it")
        or Test::More::diag($show->(@orphan));
    Test::More::note("$label: records of failed sends (possibly persisted):\n"
                     . $show->(@failed_records)) if @failed_records;

    my %by_mode;
    for my $req (@reqs) {
        $by_mode{"$req->{mode}/$req->{send_mode}"}++;
    }
    $f{mix} = join ', ', map { "$_ $by_mode{$_}" } sort keys %by_mode;
    Test::More::diag("$label: " . join ', ', map { "$_ $f{$_}" }
                     qw(sent attempts retries answered 200 202 OK ERROR PENDING 503 other
                        refused not_accepted unaccounted records plain_duplicates
                        idempotent_duplicates records_of_failed));
    Test::More::diag("$label: mix: $f{mix}");
    Test::More::diag("$label: errors: " . join '; ', map { "$_ x $f{errors}{$_}" }
                     sort keys %{ $f{errors} }) if $f{errors};
    return \%f;
}

1;
