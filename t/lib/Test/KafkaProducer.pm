=pod

=encoding utf8

=head1 NAME

Test::KafkaProducer - Test::Nginx-like data-driven tests for
ngx_http_kafka_producer_module, with Kafka read-back

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::KafkaProducer 'no_plan';

    no_shuffle();
    run_tests();

    __DATA__

    === TEST 1: sync plain send
    --- config
        location /api/v1/send { kafka_producer_send; }
    --- request
    POST /api/v1/send?mode=plain&eventId=T1-a
    --- error_code: 200
    --- response_body_like: "offset":\d+

Run from the repository root:

    prove -r t/

=head1 DESCRIPTION

Each test file is a L<Test::Base> spec. For every block (and every repetition,
see C<repeat_each()>) the harness

=over

=item 1.

starts the mock Kafka cluster if it is not running yet (one cluster per test
FILE, shared by all blocks, started lazily on first need),

=item 2.

sends the C<--- kafka_mock> commands, runs C<--- init_code>,

=item 3.

writes an nginx.conf into a fresh temporary prefix directory and starts nginx
in the foreground (C<daemon off; master_process on>) on a free port,

=item 4.

runs C<--- init>, sends the request(s), checks status, body, headers and
timing,

=item 5.

sends C<--- kafka_mock_after>, sleeps C<--- wait>, runs C<--- test_code>,

=item 6.

for every request to a C<.../send> URI: checks the response JSON, polls
asynchronous requests until they leave state PENDING, sends
C<--- kafka_mock_before_check>, then reads the record back from the broker with
kcat and counts the records carrying the request's eventId (exactly once),

=item 7.

runs C<--- final_code>, stops nginx with SIGQUIT (SIGKILL after the shutdown
timeout; a shutdown that needs SIGKILL is a failure), and

=item 8.

checks the error log (C<--- error_log>, C<--- no_error_log> and the built-in
checks for C<[alert]>, C<[emerg]>, C<AddressSanitizer>, C<runtime error>,
C<LeakSanitizer>).

=back

The sections have the names and the meaning of OpenResty's
Test::Nginx::Socket (see F<t/README.md>, the reference for test writers,
and its section "Running a file under Test::Nginx"): every check is its own
TAP test, the file plans with C<use Test::KafkaProducer 'no_plan'> (or
C<plan tests =E<gt> N>); C<run_tests()> calls C<done_testing()> if nothing
was planned.

On any failure inside a block the tail of the error log is printed (and the
prefix directory is named so it can be kept with C<TEST_NGINX_KEEP_PREFIX=1>).

Nothing is left running: nginx runs in its own process group, which is killed
on timeout, when the test script dies (END block), on SIGINT/SIGTERM/SIGHUP,
and (Linux) by a parent-death signal if the script is killed with SIGKILL.

=head2 Things test writers must know

=over

=item *

B<eventIds must be unique> within a test file (all blocks share one cluster
and the exactly-once check counts every record of the topic carrying the
eventId). With C<repeat_each(N)> include C<$TEST_NGINX_REPEAT> in the eventId.
If one block sends the same eventId several times, give the expected total in
C<--- kafka_count> for each of those requests.

=item *

The exactly-once check runs right after the response (and async polling). A
block whose request may still be delivered later (timeouts, slow broker) must
say what it expects with C<--- kafka_count> (and usually C<--- wait>) or turn
the read-back off with C<--- no_kafka_check>.

=item *

The read-back needs reachable brokers: undo C<down all> etc. with
C<--- kafka_mock_after> (before async polling) or
C<--- kafka_mock_before_check> (after async polling, before the read-back).

=item *

A block with C<--- http_config> that sets C<kafka_producer_brokers> or
C<kafka_producer_status_zone> itself needs C<--- no_default_http_config>.

=item *

Record checks compare the payload's C<mode> with lc(query C<mode>) and
C<sendMode> with lc(query C<sendMode> // 'sync'); the Kafka headers
C<producer-mode> / C<send-mode> are compared with the same lower-cased values.

=back

=head2 The generated nginx.conf

    worker_processes N; master_process on; daemon off;
    user root;                  # only when the suite runs as root and
                                # main_config has no user directive
    error_log PREFIX/logs/error.log LEVEL; pid PREFIX/logs/nginx.pid;
    env NAME;                   # for each --- env line
    load_module .../ndk_http_module.so;      # not with --- no_module
    load_module .../ngx_http_kafka_producer_module.so;
    MAIN_CONFIG
    events { worker_connections 1024; }
    http {
        access_log PREFIX/logs/access.log;
        *_temp_path PREFIX/tmp/...;
        kafka_producer_brokers $TEST_NGINX_KAFKA_BROKERS;  # not with no_module
        kafka_producer_status_zone kafka_status:1m;        # or no_default_http_config
        HTTP_CONFIG
        server { listen 127.0.0.1:$TEST_NGINX_SERVER_PORT; server_name localhost; CONFIG }
    }

nginx is started as C<nginx -p PREFIX/ -c PREFIX/conf/nginx.conf -e
PREFIX/logs/error.log>; its stdout/stderr go to C<PREFIX/logs/stderr.log>,
which the log checks read too. It counts as started when the pid file names
the master (nginx writes it after opening its listening sockets). The
document root is C<PREFIX/html>. A missing module file fails the block
before nginx runs (so a must_die block cannot pass because of it).

=head1 SECTIONS

All text sections get C<$TEST_NGINX_*> variables substituted (see
L</VARIABLES>). Test::Base filters work as usual (e.g. C<--- request eval>,
C<--- error_log eval> returning a list of strings / qr// objects), and so do
C<--- ONLY>, C<--- SKIP>, C<--- LAST>.

Sections marked I<per request>: with one request, the value; with several
requests (C<--- request eval> giving an array) an array with one value per
request (C<--- error_code eval: [200, 202]>); a single value is then an
error, as in Test::Nginx.

=head2 nginx configuration

=over

=item main_config

Text put in the main context (after the load_module lines).

=item http_config

Text put in the http block, after the default http config.

=item config

Text put in the C<server> block (which already has C<listen> and
C<server_name localhost>).

=item workers

C<worker_processes> of this block (default C<workers()>, 1).

=item log_level

error_log level, default C<info>.

=item no_module

Do not load NDK and the Kafka module and leave out the default http config
(plain nginx; used by the harness self-test).

=item no_default_http_config

Keep the load_module lines but leave out C<kafka_producer_brokers
$TEST_NGINX_KAFKA_BROKERS;> and C<kafka_producer_status_zone
kafka_status:1m;>.

=item env

Lines C<NAME=value> put into nginx's environment; an C<env NAME;> directive
is added to the main context for each, so workers see them too.
C<LD_PRELOAD> is appended to the sanitizers' runtime of
C<TEST_NGINX_LD_PRELOAD> when both are set (e.g. the fault injector
C<build/rdkafka-fail-new.so> of F<t/055-lifecycle.t>).

=item user_files

Like Test::Nginx: C<< >>> path >> lines, each followed by the file content,
written under C<PREFIX/html/> (the default document root).

=item must_die

The configuration must be rejected: C<nginx -t> is run and must exit non-zero.
C<--- error_log> lines are then matched against its output (and the error log
file). No nginx is started and no request is made.

=item shutdown_timeout

Seconds to wait after SIGQUIT before SIGKILL (default 20, or
C<$TEST_NGINX_SHUTDOWN_TIMEOUT>). Needing SIGKILL fails the block.

=item start_timeout

Seconds to wait for nginx to listen (default 10).

=back

=head2 Requests

=over

=item request

C<METHOD URI> on the first line; everything after it is the request body (one
trailing newline removed). The client speaks HTTP/1.1 with
C<Host: localhost> and C<Connection: close> (unless given in more_headers) and
sends C<Content-Length> for a body (C<Content-Length: 0> for body-less
POST/PUT/PATCH).

=item request eval, pipelined_requests eval

An array of such request texts: several requests, sent one after the other
on connections of their own.

=item init

Perl code run after nginx has started, before the requests (Test::Nginx's
C<--- init>).

=item more_headers

Extra request header lines C<Name: value>.

=item timeout

Per-request timeout in seconds (default 10). A request that times out or whose
connection fails is a failure unless C<--- abort> is given.

=item abort

Timeouts / connection errors are expected (e.g. a client that gives up while
the module still waits for Kafka): they are not failures (the client simply
closes the connection); status and body checks still apply to whatever
arrived.

=back

=head2 Response checks

=over

=item error_code

Expected status (I<per request>).

=item response_body

Exact body. As a string it applies to every request; an eval'd array ref
gives one body per request.

=item response_body_like

Regex (unanchored, C</s>) the body must match (I<per request>).

=item response_headers

Lines C<Name: value> (exact, header names case-insensitive) or C<!Name>
(header must be absent). Applies to every request (eval'd array ref of such
texts: per request).

=item response_headers_like

Lines C<Name: regex>, anchored as in Test::Nginx (C<qr/^regex$/>: the
whole value). Applies like response_headers.

=item response_time_lt

Elapsed seconds of the request must be below this (I<per request>); for
"does not hang" checks, with generous bounds.

=back

=head2 Kafka mock and Kafka read-back

=over

=item kafka_mock

Mock commands (one per line, C<#> comments allowed) sent before nginx starts,
e.g. C<rtt 1 3000>, C<down all>. An C<error:> answer fails the block.

=item kafka_mock_after

Mock commands sent after the request(s) and their HTTP checks, before
C<test_code> and async polling (e.g. C<up all>). They are also sent if the
block dies earlier, so the cluster is restored for later blocks.

=item kafka_mock_before_check

Mock commands sent after async polling, right before the Kafka read-back
(e.g. C<up all> after waiting for an async ERROR). Also sent if the block dies
earlier.

=item kafka_mock_only

The block needs the mock cluster (a fault only the mock makes, or a mock
detail such as its partition counts); the text says why. With
C<TEST_NGINX_KAFKA_BROKERS> set the block is skipped and the reason
printed. Blocks with C<--- kafka_mock>, C<--- kafka_mock_after>,
C<--- kafka_mock_before_check>, or a call to C<kafka_mock()> in their code,
are skipped the same way without it; a C<--- kafka_mock> section that only
creates topics (C<topic NAME N> lines) is no fault: on a real cluster the
topic must exist with N partitions already, and the block runs.

=item send_uri_like

Regex matched against the path of each request to decide whether it is a
send request to verify in Kafka. Default C</send$>.

=item no_kafka_check

No Kafka verification at all for this block (HTTP checks only).

=item kafka_topic

Topic expected when the request has no C<topic> query parameter (default
C<bhf-transactions>).

=item kafka_count

Number of records with the request's eventId the topic must hold after the
request (I<per request>). Default: 1 for a 200 response or a 202 whose async
state ended OK, 0 for any other status, no check for a 202 that ended in
another state. Use C<-> in a per-request list for "no check".

=item async_state

Final state expected for a 202 request (I<per request>, default C<OK>).
C<PENDING> means: the first status poll must say PENDING.

=item async_timeout

Seconds to poll the status URI (every 100 ms) for a 202 request (default 15).

=back

What is verified for a send request:

=over

=item status 200 (sync)

The response JSON has eventId (equal to the request's), mode, sendMode, topic
(the expected topic), key, partition and offset. The record at exactly
topic/partition/offset is read with kcat and must have: the same key; a JSON
payload with eventId, mode (lc), sendMode (lc, default sync), C<api> eq
C<nginx>, C<ts> like C<2024-01-02T03:04:05.678Z>; headers C<producer-mode>,
C<send-mode> and C<timestamp>.

=item status 202 (async)

The response JSON has a UUID C<requestId>, C<state> PENDING, and a
C<Location> header ending in C<?requestId=ID>. C<GET Location> is polled until
the state is not PENDING; it must equal C<async_state>. For OK the status
body's topic/partition/offset record is checked as above (key compared to the
status body's key, else the 202 body's, if any).

=item exactly once

All partitions of the topic (query C<topic>, else C<kafka_topic>, else
bhf-transactions) are read from the beginning; the records whose payload
eventId equals the request's eventId (percent-decoded, C<+> is a space) are
counted and compared with C<kafka_count> or its default.

=back

=head2 Log checks (after nginx has stopped)

=over

=item error_log

Patterns that must each match a line of C<PREFIX/logs/error.log> (or
nginx's stderr): as in Test::Nginx, each line of the text is a plain
substring; C<--- error_log eval> gives a C<qr//> or an array of C<qr//> and
strings. Checked once, on the whole log, after nginx has stopped.

=item no_error_log

Lines that must not appear. Always checked in addition: C<[alert]>,
C<[emerg]> (each dropped if the block's C<error_log> expects it),
C<AddressSanitizer>, C<runtime error>, C<LeakSanitizer>.

=item wait

Seconds to sleep after the request(s) (after kafka_mock_after), before
test_code, Kafka checks and log checks.

=back

=head2 Perl hooks

Code is compiled in package C<main> with strict and warnings; C<$block> (the
Test::Base block) is available; all exported functions can be used; dying
fails the block.

=over

=item skip_eval

C<N: CODE> (Test::Nginx): when the Perl expression CODE is true, N tests
are skipped and the block does not run (e.g.
C<--- skip_eval: 1: ! -x Test::KafkaProducer::kafka_mock_binary()>).

=item init_code

Runs before nginx starts (after kafka_mock, the prefix exists already).

=item test_code

Runs after the request(s), their HTTP checks, kafka_mock_after and wait, with
nginx running, before async polling and Kafka read-back (so a reload can hit
PENDING records). It may make its own requests (C<http_request>) and checks.

=item final_code

Runs after the Kafka read-back checks, before nginx is stopped.

=back

=head1 VARIABLES

Substituted in every text section and in URIs given to C<http_request>:
C<$TEST_NGINX_SERVER_PORT>, C<$TEST_NGINX_PREFIX>,
C<$TEST_NGINX_KAFKA_BROKERS> (starts the mock cluster), C<$TEST_NGINX_REPEAT>
(0-based repetition index) and any other C<$TEST_NGINX_*> from the
environment. Unknown names are left alone.

=head1 FUNCTIONS (exported)

=over

=item run_tests()

Runs all blocks as Test::Nginx::Socket does: shuffled unless C<no_shuffle()>
or C<TEST_NGINX_NO_SHUFFLE>, each given to the C<add_block_preprocessor>
handlers first, each run C<repeat_each()> times.

=item repeat_each([N]), workers([N]), env_to_nginx(@names), no_shuffle(),
add_block_preprocessor(sub { ... }), check_accum_error_log()

Test::Nginx's file-level settings, same meaning: repetitions of each block;
worker_processes (a block's C<--- workers> overrides it); C<env> directives
(C<NAME> or C<NAME=value>); keep the blocks' order; a handler called with
each block before it runs; accumulated error log (always so in ours).

=item kafka_mock($command)

Sends a line to the mock cluster and returns its C<ok...> answer; dies on
C<error:>. Starts the cluster if needed.

=item kafka_mock_args(@args), kafka_mock_binary(), kafka_bootstrap()

Arguments of the mock (default C<-b 3 -t bhf-transactions:3 -t
other-topic:2 -q>; set before the cluster starts); path of the mock binary;
bootstrap.servers (starts the cluster if needed).

=item kafka_read_bootstrap(), kafka_real()

Where records are read back (C<TEST_NGINX_KAFKA_READ_BROKERS>, else
C<kafka_bootstrap()>); true when the brokers come from the environment.

=item kafka_records($topic)

All records of all partitions (kcat -J hashes: topic, partition, offset,
key, payload, headers, ...), each with added C<payload_json> (decoded payload
or undef) and C<headers_map> (name =E<gt> value).

=item kafka_record_at($topic, $partition, $offset)

The record at that position, or undef.

=item http_start($method, $uri, $body, %opt), http_finish($socket)

A request on a socket of its own (C<%opt>: headers, a hash ref), left in
flight while the test goes on; C<http_finish> reads its whole answer and
returns C<($status, $body, $raw)>.

=item kafka_raw_at($topic, $partition, $offset, $format)

The bytes kcat prints with C<-f $format> (default C<%s>, the value; C<%k>
the key) for the record at that position: binary safe.

=item kafka_count($topic)

The number of records of a topic, 0 when the topic does not exist (the
metadata request does not create it).

=item kafka_count_event($topic, $eventId)

Number of records whose payload eventId is $eventId.

=item kafka_produce($topic, $partition, $key, $payload, \%headers)

Produces one record with kcat (partition/key may be undef).

=item kafka_check_send($uri, $status, \%headers, $body, %opt)

Runs the send verification (response JSON, async polling, record check,
exactly-once count) for a request made by custom code; C<%opt>: count,
async_state, async_timeout, topic, label.

=item http_request($method, $uri, $body, %opt)

Request to the current block's nginx; returns C<($status, \%headers, $body)>
(header names lower-case, repeated headers joined with C<", ">) or, in scalar
context, a hash ref with status, headers, body, elapsed, error. C<%opt>:
headers (text or hash ref), timeout.

=item status_wait($location, $timeout)

Polls C<GET $location> (an async status URI) every 100 ms until the record
is no longer PENDING or $timeout seconds (default 15) have passed; returns
the last body.

=item async_delivered_once($topic, \@accepted, $timeout)

For each C<[$eventId, $status_location]> of C<@accepted> (async sends that
got a 202), waits with C<status_wait> and counts those that reached OK and
whose eventId is in C<$topic> exactly once; returns the count.

=item nginx_signal($sig)

Signals the nginx master: the lower-case actions C<reload> (HUP), C<quit>
(QUIT), C<stop> (TERM), C<reopen> (USR1), or an upper-case signal name
(C<'USR2'>, C<'SIGSTOP'>, ...).

=item nginx_pid(), nginx_prefix(), nginx_port(), nginx_wait($timeout)

Master pid; prefix dir; port; wait up to $timeout for the master to exit
(returns its wait status, or undef if it is still running).

=back

=head1 ENVIRONMENT

C<TEST_NGINX_LOAD_MODULES> (the .so files every block loads, blank-separated;
default NDK then C<TEST_NGINX_MODULE>), C<TEST_NGINX_NO_SHUFFLE>,
C<TEST_KP_TEST_NGINX=1> (run the file under Test::Nginx::Socket instead:
L<Test::KafkaProducer::TestNginx>, F<t/README.md>),
C<TEST_NGINX_BINARY> (default /usr/sbin/nginx), C<TEST_NGINX_MODULE> (default
build/ngx_http_kafka_producer_module.so), C<TEST_NGINX_NDK_MODULE> (default
/usr/lib/nginx/modules/ndk_http_module.so), C<KAFKA_MOCK> (default
build/kafka-mock), C<TEST_NGINX_KAFKA_BROKERS> (use these brokers instead of
starting the mock: nginx's bootstrap; blocks that need the mock are then
skipped with the reason printed), C<TEST_NGINX_KAFKA_READ_BROKERS> (where
the read-back and C<kafka_produce> go, default C<TEST_NGINX_KAFKA_BROKERS>:
a real broker's own listener when nginx goes through Toxiproxy), C<TEST_KCAT> (default kcat), C<TEST_KCAT_OPTS> (extra kcat
arguments), C<TEST_NGINX_LD_PRELOAD> (LD_PRELOAD for every nginx run, with
ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 and UBSAN_OPTIONS=print_stacktrace=1
unless those are set), C<TEST_NGINX_SHUTDOWN_TIMEOUT>,
C<TEST_NGINX_KEEP_PREFIX> (keep prefix dirs), C<TEST_NGINX_VERBOSE> (note
configs, requests and responses).

C<TEST_NGINX_VALGRIND=1> runs every nginx (and C<nginx -t>) under valgrind
memcheck: C<valgrind --tool=memcheck --trace-children=no
--child-silent-after-fork=no --error-exitcode=99 --leak-check=full
--errors-for-leak-kinds=definite --keep-debuginfo=yes
--suppressions=t/valgrind.supp
--log-file=PREFIX/logs/valgrind.%p.log nginx ...>. The workers are forked,
not exec'd, so they run under valgrind too, each with its own log. Every
timeout of a block (start_timeout, timeout, async_timeout, shutdown_timeout,
response_time_lt) is multiplied by C<TEST_NGINX_VALGRIND_SLOWDOWN> (default
5). Once nginx has stopped, each block also checks the valgrind logs: any
error, or any definite leak, that the suppression file does not cover
fails the block, with the report printed. C<TEST_NGINX_VALGRIND_SUPP>
overrides the suppression file (default t/valgrind.supp, which documents
why each entry is not ours); C<TEST_NGINX_VALGRIND_OPTS> adds options.

=head1 SEE ALSO

L<Test::KafkaProducer::Load> (t/lib/Test/KafkaProducer/Load.pm): a bounded,
non-blocking load generator (~32 connections, keep-alive or not) and the
accounting of every request it made against the access log, the status zone
and the topic; used from C<--- test_code> by t/050-reload-load.t.

=cut

package Test::KafkaProducer;

use strict;
use warnings;

# Lower-case -base: inherit from Test::Base (blocks(), spec parsing, Test::More
# exports) without Spiffy's source filter.
use Test::Base -base;

# Compiles user code (test_code etc.). Defined before any file lexical so that
# the code cannot see the harness's private variables.
# `use Test::KafkaProducer` with TEST_KP_TEST_NGINX=1 in the environment: the
# file runs under Test::Nginx::Socket (Test::KafkaProducer::TestNginx).
sub import {
    my $class = shift;
    if ($class eq __PACKAGE__ && $ENV{TEST_KP_TEST_NGINX} && !grep { /^-base$/i } @_) {
        require Test::KafkaProducer::TestNginx;
        return Test::KafkaProducer::TestNginx->import_into(scalar caller, @_);
    }
    unshift @_, $class;
    goto &Test::Base::import;
}

sub _compile_code {    # ($code, $section_name)
    ## no critic (ProhibitStringyEval)
    my $sub = eval "package main; use strict; use warnings; sub { my (\$block) = \@_;\n"
        . "#line 1 \"--- $_[1]\"\n$_[0]\n}";
    die "--- $_[1] does not compile: $@" unless $sub;
    return $sub;
}

use Test::More import => [qw(subtest note explain done_testing)];
use Config;
use Cwd ();
use Encode ();
use File::Path qw(make_path remove_tree);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use IPC::Run ();
use JSON::PP ();
use List::Util ();
use POSIX ();
use Time::HiRes qw(time sleep);

our @EXPORT = qw(
    run_tests repeat_each workers env_to_nginx no_shuffle add_block_preprocessor
    check_accum_error_log
    kafka_mock kafka_mock_args kafka_mock_binary kafka_bootstrap
    kafka_read_bootstrap kafka_real
    kafka_records kafka_record_at kafka_count_event kafka_produce
    kafka_raw_at kafka_count kafka_check_send http_start http_finish
    http_request status_wait async_delivered_once nginx_signal nginx_pid nginx_prefix nginx_port
    nginx_wait subtest note explain done_testing
);

my $RepeatEach = 1;
my $Workers    = 1;        # workers(): worker_processes of every block
my @EnvToNginx;            # env_to_nginx(): `env X;` lines of every block
my $NoShuffle  = 0;        # no_shuffle(): keep the blocks' order
my @Preprocessors;         # add_block_preprocessor()
my @MockArgs   = ('-b', 3, '-t', 'bhf-transactions:3', '-t', 'other-topic:2', '-q');
my %Mock;       # h, in, out, timer, bootstrap, dir
my $Cur;        # the block run in progress (see _run_block)

my $JSON     = JSON::PP->new->utf8->allow_nonref->canonical;   # bytes <-> perl
my $JSON_RAW = JSON::PP->new->allow_nonref;                    # kcat lines, kept as bytes

my @DEFAULT_NO_ERROR_LOG = ('[alert]', '[emerg]', 'AddressSanitizer',
                            'runtime error', 'LeakSanitizer');
my $UUID_RE = qr/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
my $TS_RE   = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

# prctl(PR_SET_PDEATHSIG) so that children die with us even on SIGKILL.
my $SYS_prctl = eval { require 'syscall.ph'; main::SYS_prctl() }   ## no critic
    // ($Config{archname} =~ /^x86_64/ ? 157 : $Config{archname} =~ /^aarch64/ ? 167 : undef);

$SIG{PIPE} = 'IGNORE';
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub {
        _cleanup_all();
        exit 128 + ($sig eq 'INT' ? 2 : $sig eq 'TERM' ? 15 : 1);
    };
}

END {
    local $?;
    _cleanup_all();
}

# ---------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------

sub _env {
    my ($name, $default) = @_;
    return defined $ENV{$name} && length $ENV{$name} ? $ENV{$name} : $default;
}

sub _nginx_binary { _env('TEST_NGINX_BINARY', '/usr/sbin/nginx') }
sub _valgrind     { _env('TEST_NGINX_VALGRIND', 0) ? 1 : 0 }
sub _slowdown     { _valgrind() ? _env('TEST_NGINX_VALGRIND_SLOWDOWN', 5) : 1 }
sub _module_path  { File::Spec->rel2abs(_env('TEST_NGINX_MODULE', 'build/ngx_http_kafka_producer_module.so')) }
sub _ndk_path     { File::Spec->rel2abs(_env('TEST_NGINX_NDK_MODULE', '/usr/lib/nginx/modules/ndk_http_module.so')) }
sub _kcat_cmd     { (_env('TEST_KCAT', 'kcat')) }
sub _kcat_opts    { split ' ', _env('TEST_KCAT_OPTS', '') }

sub kafka_mock_binary { _env('KAFKA_MOCK', 'build/kafka-mock') }

# The dynamic modules every block loads: TEST_NGINX_LOAD_MODULES (paths,
# blank-separated, as Test::Nginx), else NDK and TEST_NGINX_MODULE.
sub _load_modules {
    my $list = _env('TEST_NGINX_LOAD_MODULES', undef);
    return map { File::Spec->rel2abs($_) } split ' ', $list if defined $list;
    return (_ndk_path(), _module_path());
}

sub repeat_each {
    if (@_) {
        my $n = shift;
        die "repeat_each: positive integer expected\n" unless defined $n && $n =~ /^[1-9]\d*$/;
        $RepeatEach = $n;
    }
    return $RepeatEach;
}

# Test::Nginx's file-level settings (Test::Nginx::Util): the same names and
# meaning.
sub workers {
    if (@_) {
        my $n = shift;
        die "workers: positive integer expected\n" unless defined $n && $n =~ /^[1-9]\d*$/;
        $Workers = $n;
    }
    return $Workers;
}

sub env_to_nginx {
    die "env_to_nginx: no arguments specified\n" unless @_;
    for my $v (@_) {
        die "env_to_nginx: bad argument value: $v\n" if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
    return;
}

sub no_shuffle { $NoShuffle = 1; return }

# Test::Nginx checks --- error_log after every request of a block, on the
# part of the log that request wrote unless check_accum_error_log() was
# called. Ours checks once, on the whole log, after nginx has stopped: the
# accumulated log, always.
sub check_accum_error_log { return }

sub add_block_preprocessor(&) {    ## no critic (ProhibitSubroutinePrototypes)
    unshift @Preprocessors, shift;
    return;
}

sub kafka_mock_args {
    if (@_) {
        die "kafka_mock_args: the mock cluster is already running\n" if $Mock{h};
        @MockArgs = @_;
    }
    return @MockArgs;
}

# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

sub _has { exists $_[0]->{$_[1]} }

# Value of a section: undef if absent, the string, or an array ref when a
# filter (eval) produced several values.
sub _sec {
    my ($block, $name) = @_;
    return undef unless exists $block->{$name};
    my @v = @{ $block->{$name} || [] };
    return $v[0] if @v <= 1;
    return [@v];
}

sub _lines {
    my ($text) = @_;
    return () unless defined $text;
    return @$text if ref $text eq 'ARRAY';
    return grep { length } map { s/^\s+|\s+$//gr } split /\n/, $text;
}

sub _slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return '';
    local $/;
    my $s = <$fh>;
    return $s // '';
}

sub _spew {
    my ($file, $content) = @_;
    open my $fh, '>:raw', $file or die "cannot write $file: $!\n";
    print {$fh} $content;
    close $fh or die "cannot write $file: $!\n";
}

sub _tail {
    my ($text, $n) = @_;
    my @l = split /\n/, $text // '';
    @l = @l[-$n .. -1] if @l > $n;
    return join "\n", @l;
}

sub _utf8_dec {
    my ($bytes) = @_;
    return undef unless defined $bytes;
    return Encode::decode('UTF-8', $bytes);
}

sub _uri_unescape {
    my ($s) = @_;
    $s =~ tr/+/ /;
    $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    return _utf8_dec($s);
}

sub _query_params {
    my ($uri) = @_;
    my %q;
    my (undef, $query) = split /\?/, $uri, 2;
    return %q unless defined $query;
    $query =~ s/#.*//s;
    for my $pair (split /&/, $query) {
        next unless length $pair;
        my ($k, $v) = split /=/, $pair, 2;
        $k = _uri_unescape($k);
        $q{$k} = _uri_unescape($v // '') unless exists $q{$k};
    }
    return %q;
}

sub _uri_path {
    my ($uri) = @_;
    my ($path) = split /[?#]/, $uri, 2;
    return $path // '';
}

sub _decode_json {
    my ($bytes) = @_;
    return undef unless defined $bytes && length $bytes;
    return eval { $JSON->decode($bytes) };
}

sub _show { defined $_[0] ? "'$_[0]'" : 'undef' }

# Per-request expectations, as Test::Nginx::Socket's get_indexed_value: with
# one request the value (or the first element of an array); with several
# requests an array with one element per request, anything else is an error.
# $trim: a one-word value (status code, count, state), surrounding blanks
# removed.
sub _per_request {
    my ($block, $name, $n, $trim) = @_;
    my $v = _sec($block, $name);
    return undef unless defined $v;
    my @l;
    if ($n > 1) {
        die "--- $name: the block makes $n requests, the expected values must be an"
            . " array as well (--- $name eval: [...])\n" unless ref $v eq 'ARRAY';
        die "--- $name has " . scalar(@$v) . " values for $n requests\n" unless @$v == $n;
        @l = @$v;
    }
    else {
        @l = (ref $v eq 'ARRAY' ? $v->[0] : $v);
    }
    if ($trim) {
        s/^\s+|\s+$//g for grep { defined && !ref } @l;
    }
    return \@l;
}

# $TEST_NGINX_* substitution
sub _var {
    my ($name) = @_;
    return $Cur->{port}   if $name eq 'TEST_NGINX_SERVER_PORT' && $Cur && $Cur->{port};
    return $Cur->{prefix} if $name eq 'TEST_NGINX_PREFIX' && $Cur && $Cur->{prefix};
    return $Cur->{rep}    if $name eq 'TEST_NGINX_REPEAT' && $Cur;
    return kafka_bootstrap() if $name eq 'TEST_NGINX_KAFKA_BROKERS';
    return $ENV{$name};
}

sub _subst {
    my ($text) = @_;
    return $text unless defined $text && !ref $text;
    $text =~ s/\$(TEST_NGINX_[A-Z0-9_]+)\b/_var($1) \/\/ "\$$1"/ge;
    return $text;
}

sub _set_pdeathsig {
    my ($sig) = @_;
    syscall($SYS_prctl, 1, $sig) if $SYS_prctl;    # PR_SET_PDEATHSIG = 1
}

# ---------------------------------------------------------------------------
# mock Kafka cluster
# ---------------------------------------------------------------------------

sub _mock_start {
    return $Mock{bootstrap} if $Mock{h};
    my $bin = kafka_mock_binary();
    die "kafka mock '$bin' is missing or not executable (build it or set KAFKA_MOCK)\n"
        unless -f $bin && -x _;
    my $dir = tempdir('kp-mock-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{TEST_NGINX_KEEP_PREFIX});
    my ($in, $out) = ('', '');
    my $timer = IPC::Run::timeout(30, name => 'kafka-mock');
    my $h = IPC::Run::start([$bin, @MockArgs],
        init => sub { $SIG{PIPE} = 'DEFAULT'; _set_pdeathsig(15) },
        '<', \$in, '>', \$out, '2>', "$dir/stderr.log", $timer);
    %Mock = (h => $h, in => \$in, out => \$out, timer => $timer, dir => $dir);
    my $ok = eval {
        $h->pump until $out =~ /^bootstrap\.servers=(\S+)\s*$/m || !$h->pumpable;
        1;
    };
    my $err = $@;
    if ($ok && $out =~ s/\A.*?^bootstrap\.servers=(\S+)[ \t\r]*\n//ms) {
        $Mock{bootstrap} = $1;
        $timer->reset;
        note("kafka-mock: bootstrap.servers=$1");
        return $1;
    }
    my $stderr = _tail(_slurp("$dir/stderr.log"), 20);
    _mock_stop();
    die "kafka mock did not print bootstrap.servers=... (" . ($err || 'it exited') . ")\n"
        . "stdout: $out\nstderr: $stderr\n";
}

sub _mock_stop {
    my $h = $Mock{h} or return;
    # "quit" and end of input, then TERM, then KILL
    my $ok = eval {
        ${ $Mock{in} } .= "quit\n";
        $Mock{timer}->start(5);
        $h->finish;
        1;
    };
    eval { $h->kill_kill(grace => 2); 1 } unless $ok;
    %Mock = ();
}

sub kafka_bootstrap {
    my $env = _env('TEST_NGINX_KAFKA_BROKERS', undef);
    return $env if defined $env;
    return _mock_start();
}

# Where the harness reads records back and produces with kcat: the real
# broker's own listener when nginx reaches it through a proxy
# (TEST_NGINX_KAFKA_READ_BROKERS), else nginx's bootstrap.
sub kafka_read_bootstrap {
    return _env('TEST_NGINX_KAFKA_READ_BROKERS', undef) // kafka_bootstrap();
}

# True when the brokers come from the environment (a real cluster): there
# is no mock to send faults to.
sub kafka_real { defined _env('TEST_NGINX_KAFKA_BROKERS', undef) ? 1 : 0 }

# Why a block cannot run on a real cluster, or undef: it sends mock
# commands (sections, or kafka_mock() in its code) or says so itself with
# --- kafka_mock_only: REASON.
sub _mock_only_reason {
    my ($block) = @_;
    return "needs the mock cluster: " . (_sec($block, 'kafka_mock_only') // '') =~ s/\s+$//r
        if _has($block, 'kafka_mock_only');
    for my $sec (qw(kafka_mock kafka_mock_after kafka_mock_before_check)) {
        next unless _has($block, $sec);
        # creating a topic is no fault: a real cluster has it already
        next if $sec eq 'kafka_mock'
            && !grep { !/^#/ && !/^topic\s+\S+\s+\d+$/ } _lines(_sec($block, $sec));
        return "mock-only fault (--- $sec)";
    }
    for my $sec (qw(init_code init test_code final_code request)) {
        my $v = _sec($block, $sec);
        return "mock-only fault (kafka_mock() in --- $sec)"
            if defined $v && !ref $v && $v =~ /\bkafka_mock\s*\(/;
    }
    return undef;
}

# `topic NAME N` on a real cluster: the topic must exist with N partitions
# (the runner creates it, e.g. KAFKA_TOPICS of tools/test-kafka.sh).  The
# metadata of all topics is asked for: a request naming the topic would
# create it on a broker with auto.create.topics.enable.
sub _real_topic_check {
    my ($topic, $n) = @_;
    my $md = $JSON_RAW->decode(_kcat('-L', '-J', '-b', kafka_read_bootstrap()));
    my ($t) = grep { $_->{topic} eq $topic } @{ $md->{topics} || [] };
    my $have = $t && !$t->{error} ? scalar @{ $t->{partitions} || [] } : 0;
    die "topic $topic: the real cluster has it with $have partitions, the block wants $n"
        . " (create it before the run: tools/test-kafka.sh KAFKA_TOPICS)\n"
        unless $have == $n;
}

sub kafka_mock {
    my ($cmd) = @_;
    die "kafka_mock: command expected\n" unless defined $cmd && $cmd =~ /\S/;
    $cmd =~ s/^\s+|\s+$//g;
    die "kafka_mock: TEST_NGINX_KAFKA_BROKERS is set, there is no mock to talk to\n"
        if defined _env('TEST_NGINX_KAFKA_BROKERS', undef);
    _mock_start();
    my ($h, $in, $out) = @Mock{qw(h in out)};
    $$in .= "$cmd\n";
    $Mock{timer}->start(30);
    my ($answer, @other);
    my $ok = eval {
        while (!defined $answer) {
            if ($$out =~ s/\A(.*?)\r?\n//) {
                my $line = $1;
                if ($line =~ /^(?:ok|error)\b/) { $answer = $line } else { push @other, $line }
                next;
            }
            die "kafka mock exited\n" unless $h->pumpable;
            $h->pump;
        }
        1;
    };
    my $err = $@;
    $Mock{timer}->reset;
    if (!$ok) {
        my $stderr = _tail(_slurp("$Mock{dir}/stderr.log"), 20);
        _mock_stop();
        die "kafka mock: no answer to '$cmd': $err" . "stderr: $stderr\n";
    }
    note("kafka-mock: $_") for @other;
    die "kafka mock: '$cmd' -> $answer\n" if $answer =~ /^error/;
    return $answer;
}

sub _mock_section {
    my ($ctx, $name) = @_;
    delete $ctx->{pending_mock}{$name};
    for my $cmd (_lines(_subst(_sec($ctx->{block}, $name)))) {
        next if $cmd =~ /^#/;
        if (kafka_real() && $cmd =~ /^topic\s+(\S+)\s+(\d+)$/) {
            _real_topic_check($1, $2);
            next;
        }
        my $answer = kafka_mock($cmd);
        note("$ctx->{title}: kafka-mock '$cmd' -> $answer") if $ENV{TEST_NGINX_VERBOSE};
    }
}

# ---------------------------------------------------------------------------
# kcat
# ---------------------------------------------------------------------------

sub _kcat {
    my (@args) = @_;
    my @cmd = (_kcat_cmd(), @args, _kcat_opts());
    my ($out, $err) = ('', '');
    my $ok = eval {
        IPC::Run::run(\@cmd, '<', '/dev/null', '>', \$out, '2>', \$err,
                      IPC::Run::timeout(30, name => 'kcat'));
    };
    my $rc = $?;
    die "kcat failed: @cmd: " . ($@ || "exit status $rc") . ($err ne '' ? "\n$err" : '') . "\n"
        unless $ok && $rc == 0;
    return $out;
}

sub _kcat_record {
    my ($line) = @_;
    my $r = $JSON_RAW->decode($line);
    my %h;
    if (ref $r->{headers} eq 'ARRAY') {
        my @hv = @{ $r->{headers} };
        while (my ($k, $v) = splice @hv, 0, 2) {
            $h{ _utf8_dec($k) } = _utf8_dec($v) unless exists $h{ _utf8_dec($k) };
        }
    }
    elsif (ref $r->{headers} eq 'HASH') {
        for my $k (keys %{ $r->{headers} }) {
            my $v = $r->{headers}{$k};
            $h{ _utf8_dec($k) } = _utf8_dec(ref $v ? $v->[0] : $v);
        }
    }
    $r->{headers_map} = \%h;
    $r->{payload_json} = defined $r->{payload} ? eval { $JSON->decode($r->{payload}) } : undef;
    return $r;
}

sub kafka_records {
    my ($topic) = @_;
    my $out = eval {
        _kcat('-C', '-b', kafka_read_bootstrap(), '-t', $topic, '-o', 'beginning', '-e', '-J', '-q');
    };
    if (!defined $out) {
        # a real broker refuses to read a topic that does not exist or has
        # an illegal name (the mock answers with an empty topic): no records
        return () if kafka_real() && $@ =~ /error: Broker: (?:Invalid topic|Unknown topic or partition)/;
        die $@;
    }
    return map { _kcat_record($_) } grep { /\S/ } split /\n/, $out;
}

sub kafka_record_at {
    my ($topic, $partition, $offset) = @_;
    my $out = _kcat('-C', '-b', kafka_read_bootstrap(), '-t', $topic, '-p', $partition,
                    '-o', $offset, '-c', 1, '-e', '-J', '-q');
    my ($line) = grep { /\S/ } split /\n/, $out;
    return undef unless defined $line;
    my $r = _kcat_record($line);
    return undef unless ($r->{offset} // -1) == $offset && ($r->{partition} // -1) == $partition;
    return $r;
}

# a request on a raw socket of its own, answered later (http_finish): for
# requests that must be in flight while the test does something else
sub http_start {
    my ($method, $uri, $body, %opt) = @_;
    $body //= '';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => nginx_port(),
                                  Proto => 'tcp')
        or die "connect: $!";
    my $h = '';
    $h .= "$_: $opt{headers}{$_}\r\n" for sort keys %{ $opt{headers} || {} };
    print $s "$method $uri HTTP/1.1\r\nHost: localhost\r\n$h"
        . "Content-Length: " . length($body) . "\r\nConnection: close\r\n\r\n$body";
    return $s;
}

# reads the whole answer of http_start(): (status, body, raw answer)
sub http_finish {
    my ($s) = @_;
    local $/;
    my $raw = <$s> // '';
    close $s;
    my ($status) = $raw =~ m{^HTTP/1\.1 (\d+)};
    my ($body) = $raw =~ /\r\n\r\n(.*)\z/s;
    return ($status // 0, $body // '', $raw);
}

# the raw bytes kcat's -f FORMAT prints for the record at partition/offset
# ('%s' the value, '%k' the key, '%h' the headers), binary safe
sub kafka_raw_at {
    my ($topic, $partition, $offset, $format) = @_;
    return _kcat('-C', '-b', kafka_bootstrap(), '-t', $topic, '-p', $partition,
                 '-o', $offset, '-c', 1, '-e', '-q', '-f', $format // '%s');
}

# the number of records of a topic (0 when it does not exist)
sub kafka_count {
    my ($topic) = @_;
    my $md = JSON::PP->new->decode(_kcat('-L', '-b', kafka_bootstrap(), '-J'));
    return 0 unless grep { $_->{topic} eq $topic } @{ $md->{topics} || [] };
    return scalar kafka_records($topic);
}

sub kafka_count_event {
    my ($topic, $event_id) = @_;
    return scalar grep { _record_event_id($_) eq $event_id } kafka_records($topic);
}

sub _record_event_id {
    my ($r) = @_;
    my $p = $r->{payload_json};
    return ref $p eq 'HASH' && defined $p->{eventId} && !ref $p->{eventId} ? $p->{eventId} : "\0none";
}

sub kafka_produce {
    my ($topic, $partition, $key, $payload, $headers) = @_;
    my $dir = tempdir('kp-produce-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $file = "$dir/payload";
    $payload = Encode::encode('UTF-8', $payload) if $payload =~ /[^\x00-\xff]/;
    _spew($file, $payload);
    my @args = ('-P', '-b', kafka_read_bootstrap(), '-t', $topic);
    push @args, '-p', $partition if defined $partition;
    push @args, '-k', $key if defined $key;
    push @args, '-H', "$_=$headers->{$_}" for sort keys %{ $headers || {} };
    _kcat(@args, $file);
    remove_tree($dir);
    return 1;
}

# ---------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------

sub _header_lines {
    my ($h) = @_;
    return () unless defined $h;
    if (ref $h eq 'HASH') {
        return map { [$_, $h->{$_}] } sort keys %$h;
    }
    my @out;
    for my $line (_lines($h)) {
        die "bad header line '$line'\n" unless $line =~ /^([^:\s]+)\s*:\s*(.*)$/;
        push @out, [$1, $2];
    }
    return @out;
}

sub _dechunk {
    my ($body, $r) = @_;
    my $out = '';
    pos($body) = 0;
    while (1) {
        unless ($body =~ /\G([0-9A-Fa-f]+)[^\r\n]*\r\n/gc) {
            $r->{error} //= 'incomplete chunked body';
            last;
        }
        my $size = hex $1;
        last if $size == 0;
        my $p = pos $body;
        if (length($body) < $p + $size + 2) {
            $r->{error} //= 'incomplete chunked body';
            $out .= substr($body, $p);
            last;
        }
        $out .= substr($body, $p, $size);
        pos($body) = $p + $size + 2;
    }
    return $out;
}

sub _parse_response {
    my ($r, $buf) = @_;
    my $i = index $buf, "\r\n\r\n";
    if ($i < 0) {
        $r->{error} //= length $buf ? 'incomplete response header' : 'no response (connection closed)';
        return;
    }
    my ($status_line, @lines) = split /\r\n/, substr($buf, 0, $i);
    my $body = substr($buf, $i + 4);
    unless ($status_line =~ m{^HTTP/\d\.\d\s+(\d{3})}) {
        $r->{error} //= "bad status line '$status_line'";
        return;
    }
    $r->{status} = $1;
    $r->{status_line} = $status_line;
    for my $line (@lines) {
        next unless $line =~ /^([^:\s]+):\s*(.*?)\s*$/;
        my $k = lc $1;
        push @{ $r->{header_list} }, [$1, $2];
        $r->{headers}{$k} = exists $r->{headers}{$k} ? "$r->{headers}{$k}, $2" : $2;
    }
    $body = _dechunk($body, $r) if ($r->{headers}{'transfer-encoding'} // '') =~ /chunked/i;
    $r->{body} = $body;
}

sub _http {
    my (%a) = @_;
    my $timeout = $a{timeout} // 10;
    my %r = (method => $a{method}, uri => $a{uri}, status => undef, headers => {},
             header_list => [], body => '', raw => '', error => undef);
    my $t0 = time;
    my $deadline = $t0 + $timeout;

    my @hdr = _header_lines($a{headers});
    my %have = map { (lc $_->[0] => 1) } @hdr;
    my $req = "$a{method} $a{uri} HTTP/1.1\r\n";
    $req .= "Host: localhost\r\n" unless $have{host};
    $req .= "Connection: close\r\n" unless $have{connection};
    $req .= "$_->[0]: $_->[1]\r\n" for @hdr;
    my $body = $a{body};
    $body = Encode::encode('UTF-8', $body) if defined $body && $body =~ /[^\x00-\xff]/;
    if (!$have{'content-length'} && !$have{'transfer-encoding'}) {
        if (defined $body) { $req .= 'Content-Length: ' . length($body) . "\r\n" }
        elsif ($a{method} =~ /^(?:POST|PUT|PATCH)$/) { $req .= "Content-Length: 0\r\n" }
    }
    $req .= "\r\n";
    $req .= $body if defined $body;
    $r{request} = $req;

    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $a{port},
                                     Proto => 'tcp', Timeout => $timeout);
    unless ($sock) {
        $r{error} = "cannot connect to 127.0.0.1:$a{port}: $@";
        $r{elapsed} = time - $t0;
        return \%r;
    }
    binmode $sock;
    my $sel = IO::Select->new($sock);

    my $off = 0;
    while ($off < length $req) {
        my $left = $deadline - time;
        if ($left <= 0 || !$sel->can_write($left)) {
            $r{error} = sprintf 'timeout after %gs while sending the request', $timeout;
            $r{timed_out} = 1;
            last;
        }
        my $n = syswrite $sock, $req, length($req) - $off, $off;
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            $r{write_error} = "$!";    # nginx may have answered early: read on
            last;
        }
        $off += $n;
    }

    my $buf = '';
    while (!$r{timed_out}) {
        my $left = $deadline - time;
        if ($left <= 0) {
            $r{error} = sprintf 'timeout after %gs waiting for the response', $timeout;
            $r{timed_out} = 1;
            last;
        }
        next unless $sel->can_read($left);
        my $n = sysread $sock, $buf, 65536, length $buf;
        if (!defined $n) {
            next if $!{EINTR} || $!{EAGAIN};
            $r{error} = "read failed: $!";
            last;
        }
        last if $n == 0;
    }
    close $sock;
    $r{elapsed} = time - $t0;
    $r{raw} = $buf;
    _parse_response(\%r, $buf);
    $r{error} //= "write failed: $r{write_error}" if $r{write_error} && !defined $r{status};
    return \%r;
}

sub status_wait {
    my ($location, $timeout) = @_;
    my $body = '';
    my $end = time + ($timeout // 15);
    while (time < $end) {
        (undef, undef, $body) = http_request('GET', $location);
        last if $body !~ /"state":"PENDING"/;
        sleep 0.1;
    }
    return $body;
}

sub async_delivered_once {
    my ($topic, $accepted, $timeout) = @_;
    my $ok = 0;
    for my $a (@$accepted) {
        my $st = status_wait($a->[1], $timeout);
        $ok++ if $st =~ /"state":"OK"/ && kafka_count_event($topic, $a->[0]) == 1;
    }
    return $ok;
}

sub http_request {
    my ($method, $uri, $body, %opt) = @_;
    die "http_request: no nginx is running\n" unless $Cur && $Cur->{port} && !$Cur->{exited};
    my $r = _http(port => $Cur->{port}, method => $method, uri => _subst($uri), body => $body,
                  headers => $opt{headers}, timeout => $opt{timeout} // $Cur->{timeout});
    _note_response($r) if $ENV{TEST_NGINX_VERBOSE};
    return $r unless wantarray;
    return ($r->{status}, $r->{headers}, $r->{body});
}

sub _note_response {
    my ($r) = @_;
    note(sprintf "%s %s -> %s (%.3fs)%s\n%s", $r->{method}, $r->{uri}, $r->{status} // 'no status',
         $r->{elapsed}, $r->{error} ? " error: $r->{error}" : '', $r->{raw});
}

sub _describe_response {
    my ($r) = @_;
    my $s = sprintf "%s %s -> %s in %.3fs", $r->{method}, $r->{uri},
        $r->{status_line} // 'no response', $r->{elapsed} // 0;
    $s .= "\nerror: $r->{error}" if $r->{error};
    my $raw = $r->{raw} // '';
    $raw = substr($raw, 0, 2000) . '...' if length $raw > 2000;
    $s .= "\nresponse:\n$raw" if length $raw;
    return $s;
}

# ---------------------------------------------------------------------------
# nginx process control
# ---------------------------------------------------------------------------

sub _free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
                                  Listen => 1, ReuseAddr => 1)
        or die "cannot find a free port: $@\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub _nginx_env {
    my ($ctx) = @_;
    my %e;
    if (my $preload = _env('TEST_NGINX_LD_PRELOAD', undef)) {
        $e{LD_PRELOAD}    = $preload;
        $e{ASAN_OPTIONS}  = _env('ASAN_OPTIONS', 'detect_leaks=0:abort_on_error=0');
        $e{UBSAN_OPTIONS} = _env('UBSAN_OPTIONS', 'print_stacktrace=1');
    }
    for my $k (keys %{ $ctx->{env} || {} }) {
        # a block's LD_PRELOAD comes after the sanitizers' runtime
        $e{$k} = ($k eq 'LD_PRELOAD' && $e{$k}) ? "$e{$k} $ctx->{env}{$k}"
                                                : $ctx->{env}{$k};
    }
    return %e;
}

sub _nginx_cmd {
    my ($ctx, @extra) = @_;
    my $p = $ctx->{prefix};
    my @vg;
    @vg = ('valgrind', '--tool=memcheck', '--trace-children=no',
           '--child-silent-after-fork=no', '--error-exitcode=99',
           '--leak-check=full', '--errors-for-leak-kinds=definite',
           '--show-leak-kinds=definite', '--num-callers=40',
           '--keep-debuginfo=yes',
           '--suppressions=' . File::Spec->rel2abs(_env('TEST_NGINX_VALGRIND_SUPP', 't/valgrind.supp')),
           "--log-file=$p/logs/valgrind.%p.log",
           split(' ', _env('TEST_NGINX_VALGRIND_OPTS', '')))
        if _valgrind();
    return (@vg, _nginx_binary(), @extra, '-p', "$p/", '-c', "$p/conf/nginx.conf",
            '-e', "$p/logs/error.log");
}

# Valgrind's verdict on one nginx run (TEST_NGINX_VALGRIND): every process's
# log, its ERROR SUMMARY (errors and definite leaks, after suppressions).
sub _check_valgrind {
    my ($ctx) = @_;
    return unless _valgrind();
    my @logs = sort glob "$ctx->{prefix}/logs/valgrind.*.log";
    my (@bad, $errors, $leaked, $killed);
    $errors = $leaked = $killed = 0;
    for my $f (@logs) {
        my $log = _slurp($f);
        my ($n) = $log =~ /ERROR SUMMARY: ([\d,]+) errors/;
        my ($lost) = $log =~ /definitely lost: ([\d,]+) bytes/;
        s/,//g for grep { defined } $n, $lost;
        if (!defined $n) {
            # killed with SIGKILL (a test may do that to a worker): no leak
            # check and no summary, but its errors so far are in the log
            $killed++;
            my @e = $log =~ /^==\d+== ((?:Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and dest|Jump to|Argument|Process terminating)[^\n]*)/mg;
            $errors += @e;
            push @bad, "$f (killed):\n$log" if @e;
            next;
        }
        $errors += $n;
        $leaked += $lost // 0;
        push @bad, "$f:\n$log" if $n;
    }
    push @bad, 'no valgrind log' unless @logs;
    ok(!@bad, "$ctx->{title}: valgrind: " . @logs . " processes"
              . ($killed ? " ($killed killed, not leak-checked)" : '')
              . ", $errors errors, $leaked bytes definitely lost")
        or diag(join "\n", @bad);
}

sub _reap {
    my ($ctx) = @_;
    return 1 if $ctx->{exited};
    return 0 unless $ctx->{pid};
    my $r = waitpid $ctx->{pid}, POSIX::WNOHANG();
    if ($r == $ctx->{pid} || $r == -1) {
        $ctx->{exit_status} = $r == -1 ? undef : $?;
        $ctx->{exited} = 1;
        return 1;
    }
    return 0;
}

sub _status_text {
    my ($st) = @_;
    return 'unknown status' unless defined $st;
    return 'exit code ' . ($st >> 8) unless $st & 127;
    return 'killed by signal ' . ($st & 127) . ($st & 128 ? ' (core dumped)' : '');
}

sub _nginx_start {
    my ($ctx) = @_;
    my @cmd = _nginx_cmd($ctx);
    my %env = _nginx_env($ctx);
    my $log = "$ctx->{prefix}/logs/stderr.log";
    note("$ctx->{title}: @cmd") if $ENV{TEST_NGINX_VERBOSE};
    my $pid = fork;
    die "fork failed: $!\n" unless defined $pid;
    if (!$pid) {
        POSIX::setpgid(0, 0);
        _set_pdeathsig(15);
        $SIG{$_} = 'DEFAULT' for qw(PIPE INT TERM HUP);
        @ENV{ keys %env } = values %env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);
    }
    POSIX::setpgid($pid, $pid);
    $ctx->{pid} = $pid;
    $ctx->{exited} = 0;

    my $timeout = (_sec($ctx->{block}, 'start_timeout') // 10) * _slowdown();
    my $deadline = time + $timeout;
    my $pidfile = "$ctx->{prefix}/logs/nginx.pid";
    # nginx writes the pid file after its listening sockets are open
    while (time < $deadline) {
        return undef if _slurp($pidfile) =~ /^(\d+)$/m && $1 == $pid && !_reap($ctx);
        return 'nginx exited during startup (' . _status_text($ctx->{exit_status}) . ')'
            if _reap($ctx);
        sleep 0.02;
    }
    return "nginx did not listen on 127.0.0.1:$ctx->{port} within ${timeout}s";
}

# Stops nginx: SIGQUIT, wait, SIGKILL to the whole process group on timeout.
sub _nginx_stop {
    my ($ctx, $timeout) = @_;
    my %res;
    return \%res unless $ctx->{pid};
    if (!_reap($ctx)) {
        kill 'QUIT', $ctx->{pid};
        my $deadline = time + $timeout;
        sleep 0.05 until _reap($ctx) || time > $deadline;
        if (!$ctx->{exited}) {
            $res{killed} = 1;
            kill 'KILL', -$ctx->{pid};
            kill 'KILL', $ctx->{pid};
            waitpid $ctx->{pid}, 0;
            $ctx->{exit_status} = $?;
            $ctx->{exited} = 1;
        }
    }
    if (!$res{killed} && _group_alive($ctx->{pid})) {
        $res{leftover} = 1;
        kill 'KILL', -$ctx->{pid};
    }
    $res{status} = $ctx->{exit_status};
    return \%res;
}

# Is any non-zombie process left in process group $pgid?
sub _group_alive {
    my ($pgid) = @_;
    return 0 unless kill 0, -$pgid;
    return 1 unless -d '/proc/self';
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = _slurp($stat);
        # pid (comm) state ppid pgrp ...
        next unless $s =~ /\)\s+(\S)\s+\d+\s+(\d+)/;
        return 1 if $2 == $pgid && $1 ne 'Z' && $1 ne 'X';
    }
    return 0;
}

sub nginx_pid    { $Cur && !$Cur->{exited} ? $Cur->{pid} : undef }
sub nginx_prefix { $Cur ? $Cur->{prefix} : undef }
sub nginx_port   { $Cur ? $Cur->{port} : undef }

sub nginx_signal {
    my ($sig) = @_;
    my %map = (reload => 'HUP', quit => 'QUIT', stop => 'TERM', reopen => 'USR1');
    my $name = $map{$sig} // ($sig =~ s/^SIG//r);
    die "nginx_signal: no nginx is running\n" unless $Cur && $Cur->{pid} && !_reap($Cur);
    kill($name, $Cur->{pid}) or die "nginx_signal: kill $name $Cur->{pid}: $!\n";
    return 1;
}

sub nginx_wait {
    my ($timeout) = @_;
    return undef unless $Cur && $Cur->{pid};
    my $deadline = time + ($timeout // 10);
    sleep 0.05 until _reap($Cur) || time > $deadline;
    return $Cur->{exited} ? $Cur->{exit_status} : undef;
}

sub _cleanup_all {
    if ($Cur && $Cur->{pid} && !$Cur->{exited}) {
        _nginx_stop($Cur, 5);
    }
    _mock_stop();
}

# ---------------------------------------------------------------------------
# nginx.conf
# ---------------------------------------------------------------------------

sub _build_conf {
    my ($ctx) = @_;
    my $b = $ctx->{block};
    my $p = $ctx->{prefix};
    my $module = !_has($b, 'no_module');
    my $main   = _subst(_sec($b, 'main_config')) // '';
    my $http   = _subst(_sec($b, 'http_config')) // '';
    my $server = _subst(_sec($b, 'config')) // '';
    my $workers = _sec($b, 'workers') // $Workers;
    $workers =~ s/^\s+|\s+$//g;
    my $level   = _sec($b, 'log_level') // 'info';

    my $c = "# generated by Test::KafkaProducer for $ctx->{title}\n";
    $c .= "worker_processes  $workers;\nmaster_process  on;\ndaemon  off;\n";
    $c .= "user  root;\n" if $> == 0 && $main !~ /^\s*user\s/m;
    $c .= "error_log  $p/logs/error.log  $level;\n";
    $c .= "pid  $p/logs/nginx.pid;\n";
    $c .= "lock_file  $p/logs/nginx.lock;\n";
    $c .= "env  $_;\n" for sort keys %{ $ctx->{env} };
    $c .= "env  $_;\n" for @EnvToNginx;
    if ($module) {
        $c .= "load_module  $_;\n" for _load_modules();
    }
    $c .= "$main\n" if $main =~ /\S/;
    $c .= "events {\n    worker_connections  1024;\n}\n";
    $c .= "http {\n";
    $c .= "    access_log  $p/logs/access.log;\n";
    $c .= "    client_body_temp_path  $p/tmp/body;\n";
    $c .= "    proxy_temp_path  $p/tmp/proxy;\n";
    $c .= "    fastcgi_temp_path  $p/tmp/fastcgi;\n";
    $c .= "    uwsgi_temp_path  $p/tmp/uwsgi;\n";
    $c .= "    scgi_temp_path  $p/tmp/scgi;\n";
    if ($module && !_has($b, 'no_default_http_config')) {
        $c .= "    kafka_producer_brokers  " . kafka_bootstrap() . ";\n";
        $c .= "    kafka_producer_status_zone  kafka_status:1m;\n";
    }
    $c .= "$http\n" if $http =~ /\S/;
    $c .= "    server {\n";
    $c .= "        listen  127.0.0.1:$ctx->{port};\n";
    $c .= "        server_name  localhost;\n";
    $c .= "$server\n" if $server =~ /\S/;
    $c .= "    }\n}\n";
    return $c;
}

sub _write_user_files {
    my ($ctx) = @_;
    my $text = _subst(_sec($ctx->{block}, 'user_files'));
    return unless defined $text && $text =~ /\S/;
    my @parts = split /^>>>[ \t]+(\S+)[^\n]*\n/m, $text;
    shift @parts;    # text before the first >>>
    while (my ($name, $content) = splice @parts, 0, 2) {
        die "user_files: bad file name '$name'\n" if $name =~ m{(?:^|/)\.\.(?:/|$)} || $name =~ m{^/};
        my $file = "$ctx->{prefix}/html/$name";
        (my $dir = $file) =~ s{/[^/]+$}{};
        make_path($dir);
        _spew($file, $content // '');
    }
}

# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

# --- error_log / --- no_error_log, as Test::Nginx::Socket: a text is one
# substring per line (a line "qr/x/" is the substring "qr/x/"); regexes come
# only from --- error_log eval (a qr//, or an array of qr// and strings).
sub _patterns {
    my ($block, $name) = @_;
    my $v = _sec($block, $name);
    return () unless defined $v;
    return $v if ref $v eq 'Regexp';
    return map { ref $_ ? $_ : _subst($_) } grep { defined } @$v if ref $v eq 'ARRAY';
    my $text = _subst($v);
    chomp $text;
    return grep { length } split /\n+/, $text;
}

sub _pat_str { ref $_[0] ? "$_[0]" : "'$_[0]'" }

# a pattern matches one line of the log (Test::Nginx matches line by line)
sub _log_match {
    my ($log, $p) = @_;
    for my $line (split /\n/, $log) {
        return 1 if ref $p ? $line =~ $p : index($line, $p) >= 0;
    }
    return 0;
}

sub _matching_lines {
    my ($log, $p) = @_;
    my @l = grep { ref $p ? $_ =~ $p : index($_, $p) >= 0 } split /\n/, $log;
    @l = (@l[0 .. 9], '...') if @l > 10;
    return join "\n", @l;
}

sub _check_error_logs {
    my ($ctx, $log, $must_die) = @_;
    my $b = $ctx->{block};
    my $t = $ctx->{title};
    my @want = _patterns($b, 'error_log');
    for my $p (@want) {
        ok(_log_match($log, $p), "$t: error log contains " . _pat_str($p))
            or diag("error log tail:\n" . _tail($log, 30));
    }
    for my $p (_patterns($b, 'no_error_log')) {
        ok(!_log_match($log, $p), "$t: error log does not contain " . _pat_str($p))
            or diag("matching lines:\n" . _matching_lines($log, $p));
    }
    my @defaults = grep {
        my $d = $_;
        !($must_die && $d =~ /^\[(?:alert|emerg)\]$/)
            && !grep { !ref && index($_, $d) >= 0 } @want;
    } @DEFAULT_NO_ERROR_LOG;
    my @hits = grep { index($log, $_) >= 0 } @defaults;
    ok(!@hits, "$t: no " . join('/', @defaults) . ' in the logs')
        or diag(join "\n", map { "$_:\n" . _matching_lines($log, $_) } @hits);
}

sub _check_http {
    my ($ctx, $reqs, $resps) = @_;
    my $b = $ctx->{block};
    my $n = @$resps;
    my $codes  = _per_request($b, 'error_code', $n, 1);
    my $bodies = _per_request($b, 'response_body', $n);
    my $likes  = _per_request($b, 'response_body_like', $n);
    my $times  = _per_request($b, 'response_time_lt', $n, 1);
    my $hdrs   = _per_request($b, 'response_headers', $n);
    my $hlikes = _per_request($b, 'response_headers_like', $n);
    for my $i (0 .. $n - 1) {
        my $r = $resps->[$i];
        my $l = $reqs->[$i]{label};
        if ($r->{error} && !_has($b, 'abort')) {
            fail("$l: request completed");
            diag(_describe_response($r));
        }
        if ($codes) {
            is($r->{status}, _subst($codes->[$i]), "$l: status code")
                or diag(_describe_response($r));
        }
        if ($bodies) {
            is($r->{body}, _subst($bodies->[$i]), "$l: response body");
        }
        if ($likes) {
            my $re = _subst($likes->[$i]);
            $re =~ s/\n\z// unless ref $re;
            like($r->{body} // '', qr/$re/s, "$l: response body like /$re/");
        }
        if ($times) {
            my $max = $times->[$i] * _slowdown();
            ok($r->{elapsed} < $max, sprintf("%s: response time %.3fs < %ss", $l, $r->{elapsed}, $max));
        }
        if ($hdrs) {
            for my $line (_lines(_subst($hdrs->[$i]))) {
                if ($line =~ /^!\s*(\S+)$/) {
                    ok(!exists $r->{headers}{ lc $1 }, "$l: no header $1")
                        or diag("$1: $r->{headers}{lc $1}");
                }
                elsif ($line =~ /^([^:\s]+)\s*:\s*(.*)$/) {
                    is($r->{headers}{ lc $1 }, $2, "$l: header $1");
                }
                else { die "response_headers: bad line '$line'\n" }
            }
        }
        if ($hlikes) {
            for my $line (_lines(_subst($hlikes->[$i]))) {
                die "response_headers_like: bad line '$line'\n" unless $line =~ /^([^:\s]+)\s*:\s*(.*)$/;
                my ($name, $re) = ($1, $2);
                # anchored, as Test::Nginx::Socket: qr/^$val$/
                like($r->{headers}{ lc $name } // '', qr/^$re$/, "$l: header $name like /^$re\$/")
                    or diag(exists $r->{headers}{ lc $name } ? '' : "header $name is missing");
            }
        }
    }
}

# --- Kafka verification of send requests -----------------------------------

# Phase 1: response JSON, async polling. Returns the state for phase 2.
sub _send_phase1 {
    my ($label, $uri, $resp, $opt) = @_;
    my %q = _query_params($uri);
    my $status = $resp->{status} // 0;
    my $json = _decode_json($resp->{body});
    my $jh = ref $json eq 'HASH' ? $json : {};
    my %s = (label => $label, uri => $uri, opt => $opt);
    $s{topic}     = defined $q{topic} && length $q{topic} ? $q{topic}
                  : $opt->{topic} // 'bhf-transactions';
    $s{event_id}  = $q{eventId} // (defined $jh->{eventId} && !ref $jh->{eventId} ? $jh->{eventId} : undef);
    $s{mode}      = defined $q{mode} ? lc $q{mode} : defined $jh->{mode} ? lc $jh->{mode} : undef;
    $s{send_mode} = lc($q{sendMode} // 'sync');

    if ($status == 200) {
        $s{default_count} = 1;
        my @bad;
        push @bad, 'body is not a JSON object' unless ref $json eq 'HASH';
        for my $f (qw(eventId mode sendMode topic key partition offset)) {
            push @bad, "missing '$f'" if ref $json eq 'HASH' && !exists $json->{$f};
        }
        unless (@bad) {
            push @bad, "eventId is " . _show($json->{eventId}) . ", request had " . _show($q{eventId})
                if defined $q{eventId} && ($json->{eventId} // "\0") ne $q{eventId};
            push @bad, "topic is " . _show($json->{topic}) . ", expected '$s{topic}'"
                if ($json->{topic} // "\0") ne $s{topic};
            push @bad, "mode is " . _show($json->{mode}) . ", expected '$s{mode}'"
                if defined $s{mode} && lc($json->{mode} // "\0") ne $s{mode};
            push @bad, "sendMode is " . _show($json->{sendMode}) . ", expected '$s{send_mode}'"
                if lc($json->{sendMode} // "\0") ne $s{send_mode};
            for my $f (qw(partition offset)) {
                push @bad, "$f is not a non-negative integer: " . _show($json->{$f})
                    unless defined $json->{$f} && $json->{$f} =~ /^\d+$/;
            }
        }
        ok(!@bad, "$label: 200 response JSON has eventId, mode, sendMode, topic, key, partition, offset")
            or diag(join("\n", @bad) . "\nbody: $resp->{body}");
        $s{loc} = { topic => $json->{topic}, partition => $json->{partition},
                    offset => $json->{offset}, key => $json->{key}, check_key => 1 }
            unless @bad;
    }
    elsif ($status == 202) {
        my @bad;
        my $id = $jh->{requestId};
        push @bad, 'body is not a JSON object' unless ref $json eq 'HASH';
        push @bad, 'requestId is not a UUID: ' . _show($id) unless defined $id && $id =~ $UUID_RE;
        push @bad, 'state is ' . _show($jh->{state}) . ', expected PENDING'
            unless ($jh->{state} // '') eq 'PENDING';
        my $loc = $resp->{headers}{location};
        if (!defined $loc) {
            push @bad, 'no Location header';
        }
        elsif (defined $id && $loc !~ /\?(?:.*&)?requestId=\Q$id\E$/) {
            push @bad, "Location '$loc' does not end in ?requestId=$id";
        }
        ok(!@bad, "$label: 202 response has a UUID requestId, state PENDING and a Location")
            or diag(join("\n", @bad) . "\n" . _describe_response($resp));
        my $want = $opt->{async_state} // 'OK';
        if (defined $loc) {
            (my $path = $loc) =~ s{^https?://[^/]+}{};
            my ($state, $last) = _poll_async($path, $want eq 'PENDING', $opt->{async_timeout} // 15);
            is($state, $want, "$label: async request " . ($id // '?') . " reached state $want")
                or diag($last ? _describe_response($last) : 'no status response');
            $s{async_state} = $state;
            if ($state eq 'OK') {
                $s{default_count} = 1;
                my $st = _decode_json($last->{body});
                my @sbad;
                for my $f (qw(topic partition offset)) {
                    push @sbad, "missing '$f'" unless ref $st eq 'HASH' && defined $st->{$f};
                }
                if (@sbad) {
                    fail("$label: status of an OK async request has topic, partition, offset");
                    diag(join("\n", @sbad) . "\n" . _describe_response($last));
                }
                else {
                    my ($key, $check_key) = exists $st->{key} ? ($st->{key}, 1)
                                          : exists $jh->{key} ? ($jh->{key}, 1) : (undef, 0);
                    $s{loc} = { topic => $st->{topic}, partition => $st->{partition},
                                offset => $st->{offset}, key => $key, check_key => $check_key };
                }
            }
        }
    }
    else {
        $s{default_count} = 0;
    }
    return \%s;
}

sub _poll_async {
    my ($path, $once, $timeout) = @_;
    my $deadline = time + $timeout;
    my ($state, $last) = ('(no status)', undef);
    while (1) {
        $last = http_request('GET', $path, undef, timeout => 10);
        my $j = _decode_json($last->{body});
        if (($last->{status} // 0) == 200 && ref $j eq 'HASH' && defined $j->{state}) {
            $state = $j->{state};
            return ($state, $last) if $once || $state ne 'PENDING';
        }
        else {
            $state = '(status request answered ' . ($last->{status} // $last->{error} // '?') . ')';
        }
        last if time > $deadline;
        sleep 0.1;
    }
    $state .= " after ${timeout}s" if $state eq 'PENDING';
    return ($state, $last);
}

# Phase 2: record at the reported position, exactly-once count.
sub _send_phase2 {
    my ($s) = @_;
    my $label = $s->{label};
    if (my $loc = $s->{loc}) {
        my ($t, $p, $o) = @$loc{qw(topic partition offset)};
        my $name = "$label: record at $t/$p\@$o matches";
        my $rec = eval { kafka_record_at($t, $p, $o) };
        if (!$rec) {
            fail($name);
            diag($@ || "no record at $t/$p\@$o");
        }
        else {
            my @bad;
            my $key = _utf8_dec($rec->{key});
            push @bad, 'key is ' . _show($key) . ', response said ' . _show($loc->{key})
                if $loc->{check_key} && (defined $key ? !defined $loc->{key} || $key ne $loc->{key}
                                                      : defined $loc->{key});
            my $pl = $rec->{payload_json};
            if (ref $pl ne 'HASH') {
                push @bad, 'payload is not a JSON object';
            }
            else {
                my %want = (eventId => $s->{event_id}, mode => $s->{mode},
                            sendMode => $s->{send_mode}, api => 'nginx');
                for my $f (qw(eventId mode sendMode api)) {
                    next unless defined $want{$f};
                    push @bad, "payload $f is " . _show($pl->{$f}) . ", expected '$want{$f}'"
                        if ref $pl->{$f} || ($pl->{$f} // "\0") ne $want{$f};
                }
                push @bad, 'payload ts ' . _show($pl->{ts}) . ' is not like 2024-01-02T03:04:05.678Z'
                    unless defined $pl->{ts} && !ref $pl->{ts} && $pl->{ts} =~ $TS_RE;
            }
            my $h = $rec->{headers_map};
            push @bad, 'header producer-mode is ' . _show($h->{'producer-mode'}) . ", expected '$s->{mode}'"
                if defined $s->{mode} && ($h->{'producer-mode'} // "\0") ne $s->{mode};
            push @bad, 'header send-mode is ' . _show($h->{'send-mode'}) . ", expected '$s->{send_mode}'"
                if ($h->{'send-mode'} // "\0") ne $s->{send_mode};
            push @bad, 'header timestamp is missing'
                unless defined $h->{timestamp} && length $h->{timestamp};
            ok(!@bad, $name)
                or diag(join("\n", @bad) . "\nrecord: " . _record_dump($rec));
        }
    }

    my $want = exists $s->{opt}{count} ? $s->{opt}{count} : $s->{default_count};
    return unless defined $want && $want ne '-';
    if (!defined $s->{event_id}) {
        note("$label: no eventId known, exactly-once check skipped");
        return;
    }
    my $eid = $s->{event_id};
    # test names are printed as bytes: escape what is not printable ASCII
    my $shown = $eid =~ s/([^\x20-\x7e])/sprintf '\\x{%x}', ord $1/ger;
    my $name = "$label: $want record(s) with eventId '$shown' in $s->{topic}";
    my @recs = eval { kafka_records($s->{topic}) };
    if ($@) {
        fail($name);
        diag($@);
        return;
    }
    my @hits = grep { _record_event_id($_) eq $eid } @recs;
    is(scalar @hits, $want, $name)
        or diag(join "\n", map { _record_dump($_) } @hits);
}

sub _record_dump {
    my ($r) = @_;
    my %copy = map { ($_ => $r->{$_}) } grep { !/^(?:payload_json|headers_map)$/ } keys %$r;
    return JSON::PP->new->canonical->encode(\%copy);
}

sub kafka_check_send {
    my ($uri, $status, $headers, $body, %opt) = @_;
    my $label = delete $opt{label} // (($Cur ? $Cur->{title} : 'kafka_check_send') . " ($uri)");
    $opt{topic} //= _sec($Cur->{block}, 'kafka_topic') if $Cur;
    my $resp = { method => 'custom', uri => $uri, status => $status, headers => $headers || {},
                 body => $body, raw => $body, elapsed => 0 };
    my $s = _send_phase1($label, _subst($uri), $resp, \%opt);
    _send_phase2($s);
    return $s;
}

# ---------------------------------------------------------------------------
# running blocks
# ---------------------------------------------------------------------------

# Runs the blocks the way Test::Nginx::Socket's run_tests does: shuffled
# unless no_shuffle() or TEST_NGINX_NO_SHUFFLE, each block given to the
# add_block_preprocessor() handlers first, then run repeat_each() times.
# Every check is its own test (the file plans: 'no_plan' or tests => N); a
# file that planned nothing gets done_testing() at the end.
sub run_tests {
    my @blocks = blocks();
    my $tb = Test::More->builder;
    if (!@blocks) {
        plan(skip_all => 'no test blocks') unless $tb->has_plan;
        return;
    }
    @blocks = List::Util::shuffle(@blocks)
        unless $NoShuffle || _env('TEST_NGINX_NO_SHUFFLE', 0);
    for my $block (@blocks) {
        $_->($block) for @Preprocessors;
        if (_env('TEST_KP_CHECK_ONLY', 0)) {
            _check_block($block);
            next;
        }
        for my $rep (0 .. $RepeatEach - 1) {
            _run_block($block, $rep);
        }
    }
    done_testing() unless $tb->has_plan;
}

# The request(s) of a block, as Test::Nginx::Socket: --- request (one
# request, or with eval an array of requests sent one after the other) or
# --- pipelined_requests eval (an array; here sent one after the other on
# connections of their own).
sub _requests {
    my ($block) = @_;
    die "use either --- request or --- pipelined_requests\n"
        if _has($block, 'request') && _has($block, 'pipelined_requests');
    my $v = _has($block, 'pipelined_requests') ? _sec($block, 'pipelined_requests')
                                                : _sec($block, 'request');
    die "--- pipelined_requests must give an array of requests\n"
        if _has($block, 'pipelined_requests') && ref $v ne 'ARRAY';
    my @texts = !defined $v ? () : ref $v eq 'ARRAY' ? @$v : ($v);
    my @reqs;
    for my $text (@texts) {
        die "a request must be a string, not " . ref($text) . "\n" if ref $text;
        $text = _subst($text);
        $text =~ s/\A\s+//;
        my ($line, $body) = split /\n/, $text, 2;
        $line =~ s/\s+\z//;
        die "bad request line '$line'\n"
            unless $line =~ m{^([A-Z]+)\s+(\S+)(?:\s+HTTP/\d\.\d)?$};
        my ($method, $uri) = ($1, $2);
        if (defined $body) {
            $body =~ s/\n\z//;
            undef $body unless length $body;
        }
        push @reqs, { method => $method, uri => $uri, body => $body };
    }
    return @reqs;
}

# sections of the former harness, with the Test::Nginx section to use
my %GONE = (requests => '--- request eval: [...]', skip_if => '--- skip_eval: N: CODE');

# TEST_KP_CHECK_ONLY=1: the block's sections are checked (Test::Nginx's
# rules: requests, one expectation per request, no former sections, no
# "qr/" line in a plain error_log text); nothing runs.  One test per block.
sub _check_block {
    my ($block) = @_;
    my $title = $block->name =~ s/\s+$//r;
    my @bad;
    my @reqs = eval { _requests($block) };
    push @bad, $@ if $@;
    for my $sec (qw(error_code response_body response_body_like response_time_lt
                    response_headers response_headers_like kafka_count async_state)) {
        eval { _per_request($block, $sec, scalar @reqs); 1 } or push @bad, $@;
    }
    push @bad, map { "--- $_ is gone: use $GONE{$_}\n" } grep { _has($block, $_) } sort keys %GONE;
    for my $sec (qw(error_log no_error_log)) {
        push @bad, map { "--- $sec: the line '$_' is a substring here, use --- $sec eval\n" }
                   grep { !ref && /^qr\// } _patterns($block, $sec);
    }
    ok(!@bad, "$title: sections follow Test::Nginx's rules") or diag(join '', @bad);
}

sub _needs_kafka {
    my ($block, @reqs) = @_;
    return 1 if !_has($block, 'no_module');
    return 1 if grep { _has($block, $_) } qw(kafka_mock kafka_mock_after kafka_mock_before_check);
    for my $k (keys %$block) {
        next if $k =~ /^_/;
        my $v = $block->{$k};
        return 1 if ref $v eq 'ARRAY' && grep { defined && !ref && /\$TEST_NGINX_KAFKA_BROKERS\b/ } @$v;
    }
    return 1 if !_has($block, 'no_kafka_check') && grep { $_->{is_send} } @reqs;
    return 0;
}

sub _run_block {
    my ($block, $rep) = @_;
    my $title = $block->name;
    $title =~ s/\s+$//;
    $title .= " (repeat $rep)" if $RepeatEach > 1;
    my $tb = Test::More->builder;
    my $first = $tb->current_test;
    for my $old (grep { $GONE{$_} } sort keys %GONE) {
        next unless _has($block, $old);
        fail("$title: --- $old is not a Test::Nginx section, use $GONE{$old}");
        return;
    }
    if (defined(my $spec = _sec($block, 'skip_eval'))) {
        # Test::Nginx: "N: CODE", N tests skipped when CODE is true
        if ($spec !~ /^\s*(\d+)\s*:\s*(.*?)\s*\z/s) {
            fail("$title: --- skip_eval wants 'N: CODE'");
            return;
        }
        my ($n, $cond) = ($1, $2);
        my $skip = eval { _compile_code("return ($cond);", 'skip_eval')->($block) };
        if ($@) {
            fail("$title: --- skip_eval");
            diag($@);
            return;
        }
        if ($skip) {
            $tb->skip("$title - skip_eval: $cond") for 1 .. $n;
            return;
        }
    }
    if (kafka_real() and my $why = _mock_only_reason($block)) {
        Test::More::diag("$title: skipped on a real cluster: $why");
        $tb->skip("$title - real cluster: $why");
        return;
    }
    my %ctx = (block => $block, title => $title, rep => $rep, env => {},
               pending_mock => {});
    $Cur = \%ctx;
    my $ok = eval { _run_block_body(\%ctx); 1 };
    my $err = $@;
    if (!$ok) {
        fail("$title: harness error");
        diag($err);
    }
    # Whatever happened: restore the cluster, stop nginx.
    for my $section (qw(kafka_mock_after kafka_mock_before_check)) {
        next unless $ctx{pending_mock}{$section};
        eval { _mock_section(\%ctx, $section); 1 } or diag("$title: --- $section: $@");
    }
    if ($ctx{pid} && !$ctx{exited}) {
        _nginx_stop(\%ctx, 5);
    }
    if ($ctx{prefix}) {
        my @results = ($tb->summary)[$first .. $tb->current_test - 1];
        if (grep { !$_ } @results) {
            my $log = _slurp("$ctx{prefix}/logs/error.log")
                    . _slurp("$ctx{prefix}/logs/stderr.log");
            diag("$title: prefix $ctx{prefix}; error log tail:\n" . _tail($log, 30));
        }
        remove_tree($ctx{prefix}) unless $ENV{TEST_NGINX_KEEP_PREFIX};
    }
    $Cur = undef;
}

sub _run_block_body {
    my ($ctx) = @_;
    my $b = $ctx->{block};
    my $title = $ctx->{title};

    my $send_re = _sec($b, 'send_uri_like') // '/send$';
    $send_re =~ s/\n\z//;
    my @reqs = _requests($b);
    for my $i (0 .. $#reqs) {
        my $r = $reqs[$i];
        $r->{label} = @reqs > 1 ? "$title [request " . ($i + 1) . ": $r->{method} $r->{uri}]" : $title;
        $r->{is_send} = _uri_path($r->{uri}) =~ /$send_re/ ? 1 : 0;
    }
    $ctx->{timeout} = (_sec($b, 'timeout') // 10) * _slowdown();

    if (!_has($b, 'no_module')) {
        for my $so (_load_modules()) {
            die "module $so not found (build it or set TEST_NGINX_MODULE /"
                . " TEST_NGINX_NDK_MODULE / TEST_NGINX_LOAD_MODULES)\n"
                unless -f $so;
        }
    }
    kafka_bootstrap() if _needs_kafka($b, @reqs);

    # prefix, port
    my $prefix = tempdir('kp-nginx-XXXXXX', TMPDIR => 1, CLEANUP => !$ENV{TEST_NGINX_KEEP_PREFIX});
    $prefix = Cwd::realpath($prefix);
    $ctx->{prefix} = $prefix;
    make_path(map { "$prefix/$_" } qw(conf logs html tmp));
    chmod 0755, $prefix, map { "$prefix/$_" } qw(conf logs html tmp);
    $ctx->{port} = _free_port();
    _write_user_files($ctx);

    # environment
    for my $line (_lines(_subst(_sec($b, 'env')))) {
        die "--- env: bad line '$line'\n" unless $line =~ /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;
        $ctx->{env}{$1} = $2;
    }

    $ctx->{pending_mock}{$_} = 1
        for grep { _has($b, $_) } qw(kafka_mock_after kafka_mock_before_check);
    _mock_section($ctx, 'kafka_mock');

    if (defined(my $code = _sec($b, 'init_code'))) {
        _compile_code($code, 'init_code')->($b);
    }

    my $conf = _build_conf($ctx);
    _spew("$prefix/conf/nginx.conf", $conf);
    note("$title: nginx.conf\n$conf") if $ENV{TEST_NGINX_VERBOSE};

    if (_has($b, 'must_die')) {
        _run_must_die($ctx);
        return;
    }

    my $start_err = _nginx_start($ctx);
    ok(!defined $start_err, "$title: nginx started on 127.0.0.1:$ctx->{port}")
        or do {
            diag($start_err);
            _nginx_stop($ctx, 5);
            return;
        };

    if (defined(my $code = _sec($b, 'init'))) {
        _compile_code($code, 'init')->($b);
    }

    my @resps;
    for my $r (@reqs) {
        my $resp = _http(port => $ctx->{port}, method => $r->{method}, uri => $r->{uri},
                         body => $r->{body}, headers => _subst(_sec($b, 'more_headers')),
                         timeout => $ctx->{timeout});
        _note_response($resp) if $ENV{TEST_NGINX_VERBOSE};
        push @resps, $resp;
    }
    _check_http($ctx, \@reqs, \@resps) if @reqs;

    _mock_section($ctx, 'kafka_mock_after');
    if (my $wait = _sec($b, 'wait')) {
        sleep $wait;
    }
    if (defined(my $code = _sec($b, 'test_code'))) {
        _compile_code($code, 'test_code')->($b);
    }

    # Kafka verification
    my @states;
    if (!_has($b, 'no_kafka_check')) {
        my @sends = grep { $reqs[$_]{is_send} } 0 .. $#reqs;
        my $n = @reqs;
        my $counts = _per_request($b, 'kafka_count', $n, 1);
        my $astate = _per_request($b, 'async_state', $n, 1);
        for my $i (@sends) {
            my %opt = (topic => _sec($b, 'kafka_topic'),
                       async_timeout => (_sec($b, 'async_timeout') // 15) * _slowdown());
            $opt{count} = $counts->[$i] if $counts;
            $opt{async_state} = $astate->[$i] if $astate;
            push @states, _send_phase1($reqs[$i]{label}, $reqs[$i]{uri}, $resps[$i], \%opt);
        }
    }
    _mock_section($ctx, 'kafka_mock_before_check');
    _send_phase2($_) for @states;

    if (defined(my $code = _sec($b, 'final_code'))) {
        _compile_code($code, 'final_code')->($b);
    }

    # stop, then look at the logs
    my $timeout = (_sec($b, 'shutdown_timeout') // _env('TEST_NGINX_SHUTDOWN_TIMEOUT', 20))
                  * _slowdown();
    my $res = _nginx_stop($ctx, $timeout);
    my @bad;
    push @bad, "did not exit within ${timeout}s after SIGQUIT, killed with SIGKILL" if $res->{killed};
    push @bad, 'master exited with ' . _status_text($res->{status})
        if !$res->{killed} && (!defined $res->{status} || $res->{status} != 0);
    push @bad, 'processes of its process group were left running (killed)' if $res->{leftover};
    ok(!@bad, "$title: nginx shut down cleanly") or diag(join "\n", @bad);

    my $log = _slurp("$prefix/logs/error.log") . _slurp("$prefix/logs/stderr.log");
    _check_error_logs($ctx, $log, 0);
    _check_valgrind($ctx);
}

sub _run_must_die {
    my ($ctx) = @_;
    my $title = $ctx->{title};
    my @cmd = _nginx_cmd($ctx, '-t');
    my %env = _nginx_env($ctx);
    my $out = '';
    my $ok = eval {
        IPC::Run::run(\@cmd, '<', '/dev/null', '>&', \$out,
            init => sub { @ENV{ keys %env } = values %env; $SIG{PIPE} = 'DEFAULT' },
            IPC::Run::timeout(30, name => 'nginx -t'));
        1;
    };
    my $st = $?;
    die "nginx -t: $@" unless $ok;
    ok($st != 0 && !($st & 127), "$title: nginx -t rejects the configuration")
        or diag("nginx -t: " . _status_text($st) . "\n$out");
    my $log = $out . _slurp("$ctx->{prefix}/logs/error.log") . _slurp("$ctx->{prefix}/logs/stderr.log");
    _check_error_logs($ctx, $log, 1);
    _check_valgrind($ctx);
}

1;
