#!/usr/bin/env perl
#
# `make bench`: nginx with the module (2 workers) on a local kafka-mock
# cluster (3 brokers), loaded by wrk at a fixed concurrency, every scenario
# in the same nginx run:
#
#   1 return 200 (the HTTP ceiling)   2 GET /health
#   3 async send, plain               4 async send, idempotent
#   5 sync send, plain                6 sync send, idempotent
#   7 GET status of a finished async record
#
# For each: requests/s, p50, p99 and the ratio to scenario 1 of the same
# run; medians over BENCH_RUNS runs.  After every send scenario the
# records in the broker (high watermarks) are compared with what nginx
# accepted.  Then the raw librdkafka producer rate on the same cluster
# (build/rawbench), and the RSS of each worker before and after
# BENCH_SENDS sends, with the number of records in the status zone.
#
# BENCH_CHART=FILE.json redraws the chart of earlier results.
#
# Environment (the Makefile passes its variables): BENCH_DURATION (10s),
# BENCH_RUNS (3), BENCH_CONNECTIONS (64), BENCH_THREADS (2), BENCH_WARMUP
# (2s), BENCH_SENDS (1000000, 0 skips the RSS phase), BENCH_CHUNK (5s),
# BENCH_ZONE (10m), BENCH_LINGER (0/1: plain/idempotent linger in ms, the
# module's defaults; one number for both), BENCH_WORKERS (2), BENCH_OPTIONS
# (extra "name value;name value" librdkafka properties), BENCH_SCENARIOS
# (only these, e.g. "async-plain,sync-plain"), BENCH_RAW (0 skips the raw
# producer), BENCH_MODULE (another build of the module), BUILD (build),
# BENCH_RESULTS (bench/results).
#
# Output: bench/results/bench-<UTC time>.json, latest.json, latest.png and
# a table on stdout.  Work files (nginx prefix, logs) in build/bench/.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny;
use IO::Socket::INET;
use IPC::Open2;
use JSON::PP;
use POSIX qw(strftime WNOHANG);
use Time::HiRes qw(time sleep);

my $top = abs_path(dirname(__FILE__) . '/../..');
chdir $top or die "chdir $top: $!\n";

my %cfg = (
    duration    => env('BENCH_DURATION', '10s'),
    runs        => env('BENCH_RUNS', 3),
    connections => env('BENCH_CONNECTIONS', 64),
    threads     => env('BENCH_THREADS', 2),
    warmup      => env('BENCH_WARMUP', '2s'),
    sends       => env('BENCH_SENDS', 1000000),
    chunk       => env('BENCH_CHUNK', '5s'),
    zone        => env('BENCH_ZONE', '10m'),
    linger      => env('BENCH_LINGER', '0/1'),
    workers     => env('BENCH_WORKERS', 2),
    options     => env('BENCH_OPTIONS', ''),
    sample      => env('BENCH_SAMPLE', 50),
    body        => env('BENCH_BODY', 1024),
);

# the linger of each producer, in ms: "P/I" or one number for both
my ($linger_plain, $linger_idem) = $cfg{linger} =~ m{^(\d+)(?:/(\d+))?$}
    or die "bench: BENCH_LINGER=$cfg{linger}: expected N or N/M (ms)\n";
$linger_idem //= $linger_plain;
$cfg{linger} = "$linger_plain/$linger_idem";

my $build = abs_path(env('BUILD', 'build'));
my $results = env('BENCH_RESULTS', 'bench/results');
my $nginx_bin = env('NGINX', '/usr/sbin/nginx');
my $work = "$build/bench";
my $module = env('BENCH_MODULE', "$build/ngx_http_kafka_producer_module.so");
my $mock_bin = "$build/kafka-mock";
my $rawbench = "$build/rawbench";
my $lua = "$top/tools/bench/bench.lua";

for ($module, $mock_bin, $rawbench) {
    die "bench: $_ is missing, run make first\n" unless -x $_ || -f $_;
}

my @send_topics = qw(bench-async-plain bench-async-idempotent
                     bench-sync-plain bench-sync-idempotent
                     bench-pass-async-plain bench-pass-async-idempotent
                     bench-pass-sync-plain bench-pass-sync-idempotent);

my @scenarios = (
    { name => 'ceiling', label => 'return 200', method => 'GET',
      path => '/ceiling' },
    { name => 'health', label => 'GET /health', method => 'GET',
      path => '/health' },
    send_scenario('async', 'plain'),
    send_scenario('async', 'idempotent'),
    send_scenario('sync', 'plain'),
    send_scenario('sync', 'idempotent'),
    pass_scenario('async', 'plain'),
    pass_scenario('async', 'idempotent'),
    pass_scenario('sync', 'plain'),
    pass_scenario('sync', 'idempotent'),
    { name => 'status', label => 'GET status', method => 'GET',
      base => '/api/v1/status?requestId=' },
);

# BENCH_SCENARIOS=name,name... runs only these (and always the ceiling)
if (my $only = env('BENCH_SCENARIOS', '')) {
    my %only = map { $_ => 1 } 'ceiling', split /,/, $only;
    @scenarios = grep { $only{ $_->{name} } } @scenarios;
}

my ($mock_pid, $mock_in, $mock_out, $nginx_pid, $brokers);
my $json = JSON::PP->new->canonical->pretty;
my $clk_tck = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 1);

$SIG{INT} = $SIG{TERM} = sub { die "bench: interrupted\n" };

END { cleanup() }

# BENCH_CHART=results.json only draws the chart of earlier results
if (my $from = env('BENCH_CHART', '')) {
    open my $fh, '<', $from or die "bench: $from: $!\n";
    make_path($work);
    chart(decode_json(do { local $/; <$fh> }), "$results/latest.png");
    exit 0;
}

main();

exit 0;


sub main {
    my $started = time;

    remove_tree($work);
    make_path("$work/logs", "$work/conf", "$work/tmp", "$work/modules",
              $results);

    # a copy: a module rebuilt in place under a running nginx crashes it
    copy($module, "$work/modules/") or die "bench: copy $module: $!\n";

    $brokers = start_mock();
    my $port = free_port();

    write_conf($brokers, $port);
    start_nginx();

    my $base = "http://127.0.0.1:$port";
    wait_up("$base/health");

    my %out = (
        meta => meta($brokers),
        config => { %cfg, port => $port },
    );

    my @workers = worker_pids();
    $out{rss}{start} = rss(@workers);

    my %acc = (counts => count(@send_topics), elog => 0, alog => 0);

    say("warm-up: $cfg{warmup} per scenario");
    for my $s (@scenarios) {
        $s->{path} = $s->{base} . finished_record($base)
            if $s->{name} eq 'status';
        wrk($base, $s, $cfg{warmup}, "w");
    }
    account(\%acc, [@send_topics], 'warm-up');

    for my $run (1 .. $cfg{runs}) {
        my %r;

        for my $s (@scenarios) {
            if ($s->{name} eq 'status') {
                # a record that has not been evicted by the sends yet
                $s->{path} = $s->{base} . finished_record($base);
            }

            my $res = wrk($base, $s, $cfg{duration}, "r$run");

            # a scenario that answers nothing but errors measures nothing
            die "bench: $s->{label}: no 2xx answer in run $run "
                . "($res->{other} others); see $work/logs/error.log\n"
                unless $res->{ok};

            if ($s->{topic}) {
                $res->{accounting} =
                    account(\%acc, [$s->{topic}], "run $run $s->{name}")
                        ->{$s->{topic}};
            }

            $r{$s->{name}} = $res;
        }

        for my $s (@scenarios) {
            my $x = $r{$s->{name}};
            $x->{ratio} = $x->{ok_rps} / $r{ceiling}{ok_rps};
            # nginx CPU per request of the ceiling over this one's
            $x->{cpu_ratio} = $x->{nginx_cpu_us}
                ? $r{ceiling}{nginx_cpu_us} / $x->{nginx_cpu_us} : undef;
        }

        push @{ $out{runs} }, \%r;
        print_run($run, \%r);

        push @{ $out{raw} }, raw($brokers, $run) if env('BENCH_RAW', 1);
    }

    $out{medians} = medians($out{runs});
    $out{raw_medians} = raw_medians($out{raw}) if $out{raw};

    if ($cfg{sends} > 0) {
        $out{rss}{million} = rss_phase($base, \%acc, \@workers);
    }

    $out{accounting} = $acc{log};
    $out{accounting_total} = accounting_total($acc{log});
    $out{error_log} = error_summary();
    $out{seconds} = sprintf('%.0f', time - $started);

    stop_nginx();
    stop_mock();

    my $stamp = strftime('%Y%m%d-%H%M%S', gmtime);
    my $text = $json->encode(\%out);

    write_file("$results/bench-$stamp.json", $text);
    write_file("$results/latest.json", $text);
    chart(\%out, "$results/latest.png");

    print_summary(\%out);
    say("results: $results/bench-$stamp.json, $results/latest.json, "
        . "$results/latest.png");

    # a benchmark that loses a record or logs a crit/alert/emerg fails
    my $t = $out{accounting_total};
    my $e = $out{error_log}{counts} // {};
    my @bad = grep { $e->{$_} } qw(crit alert emerg);
    if ($t->{lost} || $t->{duplicated} || @bad) {
        die sprintf("bench: FAILED: %d lost, %d duplicated records; "
                    . "error log: %s\n", $t->{lost}, $t->{duplicated},
                    join(', ', map { "$e->{$_} $_" } @bad) || 'clean');
    }
}


sub send_scenario {
    my ($send, $mode) = @_;
    my $topic = "bench-$send-$mode";
    my $short = $mode eq 'plain' ? 'plain' : 'idem';

    return {
        name => "$send-$mode", label => "$send $mode", method => 'POST',
        topic => $topic, tag => substr($send, 0, 1) . substr($mode, 0, 1),
        path => "/api/v1/send?mode=$mode&sendMode=$send&topic=$topic"
                . "&eventId=",
    };
}


# kafka_producer_pass with a BENCH_BODY-byte body (1 KiB by default): the
# generic handler, the body as the record's value, eventId as its key
sub pass_scenario {
    my ($send, $mode) = @_;
    my $topic = "bench-pass-$send-$mode";

    return {
        name => "pass-$send-$mode", label => "pass $send $mode",
        method => 'POST', topic => $topic, body => $cfg{body},
        tag => 'p' . substr($send, 0, 1) . substr($mode, 0, 1),
        path => "/pass/$send/$mode?topic=$topic&eventId=",
    };
}


sub env {
    my ($name, $default) = @_;
    return defined $ENV{$name} && $ENV{$name} ne '' ? $ENV{$name} : $default;
}


sub say { print "bench: @_\n" }


sub write_file {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "bench: $path: $!\n";
    print $fh $text;
    close $fh or die "bench: $path: $!\n";
}


sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "bench: no free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}


sub start_mock {
    my @topics = map { ('-t', "$_:3") }
                 'bhf-transactions', @send_topics,
                 'bench-raw-plain', 'bench-raw-idempotent';

    $mock_pid = open2($mock_out, $mock_in, $mock_bin, '-b', 3, @topics, '-q');

    my $line = <$mock_out>;

    die "bench: kafka-mock did not start\n"
        unless defined $line && $line =~ /^bootstrap\.servers=(\S+)/;

    say("kafka-mock (3 brokers) at $1");

    return $1;
}


sub stop_mock {
    return unless $mock_pid;

    print $mock_in "quit\n";
    close $mock_in;

    for (1 .. 50) {
        last if waitpid($mock_pid, WNOHANG) != 0;
        sleep 0.1;
    }

    if (kill 0, $mock_pid) {
        kill 'KILL', $mock_pid;
        waitpid($mock_pid, 0);
    }

    $mock_pid = undef;
}


sub write_conf {
    my ($brokers, $port) = @_;

    my $user = $> == 0 ? "user root;\n" : '';
    my $options = join '', map { "    kafka_producer_option $_;\n" }
                           grep { /\S/ } split /;/, $cfg{options};

    write_file("$work/conf/nginx.conf", <<"EOF");
# generated by tools/bench/bench.pl
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module $work/modules/ngx_http_kafka_producer_module.so;

${user}worker_processes  $cfg{workers};
error_log  $work/logs/error.log notice;
pid        $work/logs/nginx.pid;

events {
    worker_connections  8192;
}

http {
    # the topic and eventId of every request: the bench counts the sends
    # that nginx accepted per topic and compares them with the broker
    log_format  bench  '\$status \$arg_topic \$arg_eventId';
    access_log  $work/logs/access.log bench buffer=256k flush=1s;

    client_body_temp_path  $work/tmp/body;
    keepalive_requests     1000000;

    kafka_producer_brokers      $brokers;
    kafka_producer_linger       ${linger_plain}ms idempotent=${linger_idem}ms;
    kafka_producer_status_zone  bench_status:$cfg{zone};
$options
    server {
        listen  127.0.0.1:$port backlog=4096;

        location = /ceiling {
            return 200 "OK\\n";
        }

        location = /health {
            kafka_producer_health;
        }

        location = /api/v1/send {
            kafka_producer_send;
        }

        location = /api/v1/status {
            kafka_producer_status;
        }

        # a content handler is not inherited by nested locations (as
        # proxy_pass), the directives that tune it are
        location /pass/ {
            kafka_producer_key  \$arg_eventId;

            location /pass/async/plain {
                kafka_producer_pass       \$arg_topic;
                kafka_producer_send_mode  async;
                kafka_producer_mode       plain;
            }

            location /pass/async/idempotent {
                kafka_producer_pass       \$arg_topic;
                kafka_producer_send_mode  async;
            }

            location /pass/sync/plain {
                kafka_producer_pass  \$arg_topic;
                kafka_producer_mode  plain;
            }

            location /pass/sync/idempotent {
                kafka_producer_pass  \$arg_topic;
            }
        }
    }
}
EOF
}


sub start_nginx {
    my @cmd = ($nginx_bin, '-p', "$work/", '-c', "$work/conf/nginx.conf",
               '-e', "$work/logs/error.log");

    system(@cmd, '-t', '-q') == 0 or die "bench: nginx -t failed\n";

    $nginx_pid = fork // die "bench: fork: $!\n";

    if ($nginx_pid == 0) {
        open STDOUT, '>', "$work/logs/stderr.log";
        open STDERR, '>&', \*STDOUT;
        exec @cmd, '-g', 'daemon off;';
        exit 127;
    }
}


sub stop_nginx {
    return unless $nginx_pid;

    kill 'QUIT', $nginx_pid;

    for (1 .. 300) {
        last if waitpid($nginx_pid, WNOHANG) != 0;
        sleep 0.1;
    }

    if (kill 0, $nginx_pid) {
        say("nginx did not exit on SIGQUIT, killing it");
        kill 'KILL', $nginx_pid, worker_pids();
        waitpid($nginx_pid, 0);
    }

    $nginx_pid = undef;
}


sub cleanup {
    local $?;
    stop_nginx();
    stop_mock();
}


sub wait_up {
    my ($url) = @_;

    for (1 .. 100) {
        my $r = $http->get($url);
        return if $r->{status} == 200;
        sleep 0.1;
    }

    die "bench: nginx did not answer $url\n";
}


sub worker_pids {
    return () unless $nginx_pid;

    my @pids;

    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        my ($pid, $comm, $ppid) = $line =~ /^(\d+) \((.*)\) \S+ (\d+)/
            or next;
        push @pids, $pid if $ppid == $nginx_pid;
    }

    return sort { $a <=> $b } @pids;
}


sub rss {
    my @pids = @_;
    my %r;

    for my $pid (@pids) {
        open my $fh, '<', "/proc/$pid/status" or next;
        while (<$fh>) {
            $r{$pid}{$1} = $2 if /^(VmRSS|RssAnon|RssFile|RssShmem):\s+(\d+)/;
        }
    }

    return \%r;
}


sub meta {
    my ($brokers) = @_;

    my $cpu = '';
    if (open my $fh, '<', '/proc/cpuinfo') {
        while (<$fh>) {
            if (/^model name\s*:\s*(.*)/) { $cpu = $1; last }
        }
    }

    my $nginx = `$nginx_bin -v 2>&1`;
    chomp $nginx;
    my $rdkafka = `dpkg-query -W -f '\${Version}' librdkafka1 2>/dev/null`;
    my $wrk = `wrk -v 2>&1 | head -1`;
    chomp $wrk;
    my $git = `git rev-parse --short HEAD 2>/dev/null`;
    chomp $git;
    my $dirty = `git status --porcelain src config *.c 2>/dev/null`;

    open my $la, '<', '/proc/loadavg';
    my $load = <$la>;
    chomp $load;

    return {
        date => strftime('%Y-%m-%dT%H:%M:%SZ', gmtime),
        cpu => $cpu, cores => 0 + `nproc`,
        nginx => $nginx, librdkafka => $rdkafka, wrk => $wrk,
        git => $git . ($dirty ? '+changes' : ''), loadavg_start => $load,
        brokers => 3, broker => 'librdkafka mock cluster (build/kafka-mock)',
    };
}


sub finished_record {
    my ($base) = @_;

    # to the default topic, which the accounting leaves out
    my $r = $http->post("$base/api/v1/send?mode=plain&sendMode=async"
                        . "&eventId=bench-status-" . int(time * 1000));

    die "bench: async send answered $r->{status}: $r->{content}\n"
        unless $r->{status} == 202;

    my ($id) = $r->{content} =~ /"requestId":"([0-9a-f-]+)"/;

    for (1 .. 100) {
        my $s = $http->get("$base/api/v1/status?requestId=$id");
        return $id if $s->{content} =~ /"state":"OK"/;
        sleep 0.05;
    }

    die "bench: async record $id did not become OK\n";
}


sub wrk {
    my ($base, $s, $duration, $tag, $sample) = @_;

    my $out = "$work/wrk.json";
    unlink $out;

    local $ENV{BENCH_METHOD} = $s->{method};
    local $ENV{BENCH_PATH} = $s->{path};
    local $ENV{BENCH_TAG} = $s->{tag} ? "$tag$s->{tag}" : '';
    local $ENV{BENCH_SAMPLE} = $sample // 0;
    local $ENV{BENCH_OUT} = $out;
    local $ENV{BENCH_BODY} = $s->{body} // 0;

    # the URI comes from the script, wrk takes only the host from the URL
    my @cmd = ('wrk', '-t', $cfg{threads}, '-c', $cfg{connections},
               '-d', $duration, '--timeout', '10s', '-s', $lua, "$base/");

    my @workers = worker_pids();
    my $cpu0 = cpu_ticks(@workers);
    my $mock0 = cpu_ticks($mock_pid);
    my (undef, undef, $cu0, $cs0) = times;

    my $log = `@cmd 2>&1`;

    my (undef, undef, $cu1, $cs1) = times;

    die "bench: wrk failed ($?): $log\n" if $? || !-s $out;

    my $cpu1 = cpu_ticks(@workers);
    my $mock1 = cpu_ticks($mock_pid);

    open my $fh, '<', $out or die "bench: $out: $!\n";
    my $res = decode_json(do { local $/; <$fh> });

    # CPU time per request: less sensitive to a busy machine than req/s
    my $tick = 1e6 / $clk_tck;
    $res->{nginx_cpu_us} = $res->{ok}
        ? ($cpu1 - $cpu0) * $tick / $res->{ok} : undef;
    $res->{mock_cpu_us} = $res->{ok}
        ? ($mock1 - $mock0) * $tick / $res->{ok} : undef;
    $res->{wrk_cpu_us} = $res->{ok}
        ? ($cu1 + $cs1 - $cu0 - $cs0) * 1e6 / $res->{ok} : undef;

    $res->{samples} = [ map { [ split / / ] } @{ $res->{samples} } ];
    delete $res->{samples} unless $sample;

    return $res;
}


# user + system CPU time of processes, in clock ticks
sub cpu_ticks {
    my $t = 0;

    for my $pid (@_) {
        open my $fh, '<', "/proc/$pid/stat" or next;
        my $line = <$fh> // next;
        $line =~ s/^.*\) //;
        my @f = split / /, $line;
        $t += $f[11] + $f[12];
    }

    return $t;
}


# the sum of the high watermarks of each topic
sub count {
    my @topics = @_;
    my $out = `$rawbench count -b $brokers @topics`;
    die "bench: rawbench count failed\n" if $?;
    return decode_json($out);
}


# Waits until the broker's counts stop moving (every delivery report is
# in, the access log buffers are flushed), then compares, per topic, the
# records appended since the last call with what nginx accepted: 2xx in
# the access log, plus sync sends delivered after their client had gone.

sub account {
    my ($acc, $topics, $what) = @_;

    my $t0 = time;
    my ($last, $stable) = ('', 0);
    my $now;

    for (;;) {
        $now = count(@$topics);
        my $key = join ',', map { $now->{$_} } @$topics;

        $stable = $key eq $last ? $stable + 1 : 0;
        $last = $key;

        last if $stable >= 2 && time - $t0 >= 1.5;
        last if time - $t0 > 60;

        sleep 0.3;
    }

    my %accepted;
    my %gone;

    open my $al, '<', "$work/logs/access.log" or die "bench: access.log\n";
    seek $al, $acc->{alog}, 0;
    while (<$al>) {
        my ($status, $topic) = split / /;
        next unless defined $topic;
        $accepted{$topic}{ $status =~ /^2/ ? 'ok' : $status }++;
    }
    $acc->{alog} = tell $al;

    open my $el, '<', "$work/logs/error.log" or die "bench: error.log\n";
    seek $el, $acc->{elog}, 0;
    while (<$el>) {
        if (/(delivered|delivery failed) for a client that is gone: topic "([^"]+)"/) {
            $gone{$2}{$1 eq 'delivered' ? 'delivered' : 'failed'}++;
        }
    }
    $acc->{elog} = tell $el;

    my %res;

    for my $t (@$topics) {
        my $records = $now->{$t} - ($acc->{counts}{$t} // 0);
        my $ok = $accepted{$t}{ok} // 0;
        my $late = $gone{$t}{delivered} // 0;
        my $expected = $ok + $late;

        $res{$t} = {
            what => $what,
            records => $records,
            accepted_2xx => $ok,
            delivered_client_gone => $late,
            failed_client_gone => $gone{$t}{failed} // 0,
            other_status => { map { $_ => $accepted{$t}{$_} }
                              grep { $_ ne 'ok' } keys %{ $accepted{$t} } },
            expected => $expected,
            lost => $expected > $records ? $expected - $records : 0,
            duplicated => $records > $expected ? $records - $expected : 0,
        };

        $acc->{counts}{$t} = $now->{$t};
        push @{ $acc->{log} }, { topic => $t, %{ $res{$t} } };
    }

    return \%res;
}


sub accounting_total {
    my ($log) = @_;
    my %t = (records => 0, expected => 0, lost => 0, duplicated => 0,
             checks => 0);

    for my $a (@$log) {
        $t{$_} += $a->{$_} for qw(records expected lost duplicated);
        $t{checks}++;
    }

    return \%t;
}


sub raw {
    my ($brokers, $run) = @_;
    my %r;

    for my $mode (qw(plain idempotent)) {
        my @args = ($rawbench, 'produce', '-b', $brokers,
                    '-t', "bench-raw-$mode", '-T', "r$run",
                    '-l', $mode eq 'idempotent' ? $linger_idem : $linger_plain,
                    $mode eq 'idempotent' ? ('-i') : ());

        my $unbounded = `@args -n 300000`;
        die "bench: rawbench failed\n" if $?;
        my $window = `@args -n 100000 -w $cfg{connections}`;
        die "bench: rawbench failed\n" if $?;

        $r{$mode} = decode_json($unbounded);
        $r{"$mode-window"} = decode_json($window);
    }

    say(sprintf("raw librdkafka, run %d: plain %.0f/s, idempotent %.0f/s; "
                . "%d in flight: plain %.0f/s p99 %.2f ms, idempotent "
                . "%.0f/s p99 %.2f ms", $run, $r{plain}{rate},
                $r{idempotent}{rate}, $cfg{connections},
                $r{'plain-window'}{rate}, $r{'plain-window'}{p99_ms},
                $r{'idempotent-window'}{rate},
                $r{'idempotent-window'}{p99_ms}));

    return \%r;
}


sub median {
    my @v = sort { $a <=> $b } grep { defined } @_;
    return undef unless @v;
    return $v[$#v / 2] if @v % 2;
    return ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}


sub medians {
    my ($runs) = @_;
    my @m;

    for my $s (@scenarios) {
        my $n = $s->{name};
        my %m = (name => $n, label => $s->{label});

        for my $k (qw(ok_rps rps p50_ms p90_ms p99_ms ratio nginx_cpu_us
                      mock_cpu_us wrk_cpu_us cpu_ratio)) {
            $m{$k} = median(map { $_->{$n}{$k} } @$runs);
        }

        $m{other} = 0;
        $m{socket_errors} = 0;
        for my $r (@$runs) {
            $m{other} += $r->{$n}{other};
            $m{socket_errors} += $r->{$n}{socket_errors};
        }

        push @m, \%m;
    }

    return \@m;
}


sub raw_medians {
    my ($raw) = @_;
    my %m;

    for my $k (keys %{ $raw->[0] }) {
        for my $f (qw(rate p50_ms p99_ms)) {
            $m{$k}{$f} = median(map { $_->{$k}{$f} } @$raw);
        }
    }

    return \%m;
}


# BENCH_SENDS sends in chunks over the four send scenarios; the RSS of
# each worker before and after, and the number of records in the status
# zone after every async chunk (sampled requestIds still found).

sub rss_phase {
    my ($base, $acc, $workers) = @_;

    my %p = (sends => 0, target => $cfg{sends}, chunks => []);
    my @sends = grep { $_->{topic} } @scenarios;
    my @alive;
    my $async_sends = 0;

    say("RSS phase: $cfg{sends} sends in $cfg{chunk} chunks");

    $p{before} = rss(@$workers);

    for (my $i = 0; $p{sends} < $cfg{sends}; $i++) {
        my $s = $sends[$i % @sends];
        my $async = $s->{name} =~ /^async/;
        my $res = wrk($base, $s, $cfg{chunk}, "m$i",
                      $async ? $cfg{sample} : 0);

        $p{sends} += $res->{ok};

        my %c = (scenario => $s->{name}, ok => $res->{ok},
                 ok_rps => $res->{ok_rps}, p99_ms => $res->{p99_ms});

        if ($async) {
            $async_sends += $res->{ok};
            push @alive, @{ $res->{samples} };

            # a sample stands for BENCH_SAMPLE records of its thread
            @alive = grep {
                $http->get("$base/api/v1/status?requestId=$_->[2]")
                    ->{status} == 200
            } @alive;

            $c{async_sends} = $async_sends;
            $c{zone_records_estimate} = @alive * $cfg{sample};
        }

        $c{rss} = rss(@$workers);
        push @{ $p{chunks} }, \%c;

        say(sprintf("  %-17s %7d sends (total %8d) %s", $s->{name},
                    $res->{ok}, $p{sends},
                    $async ? "zone records ~$c{zone_records_estimate}" : ''));
    }

    $p{after} = rss(@$workers);

    $p{accounting} = account($acc, [@send_topics], 'RSS phase');

    for my $pid (@$workers) {
        for my $k (qw(VmRSS RssAnon RssFile RssShmem)) {
            $p{growth_kib}{$pid}{$k} =
                ($p{after}{$pid}{$k} // 0) - ($p{before}{$pid}{$k} // 0);
        }
    }

    $p{zone} = zone_bound(\%p);

    return \%p;
}


# the slab allocator's size class of one record and the zone's capacity
sub zone_bound {
    my ($p) = @_;

    my $zone = $cfg{zone};
    my $bytes = $zone =~ /^(\d+)([kKmM]?)$/
                ? $1 * ({ '' => 1, k => 1024, K => 1024,
                          m => 1048576, M => 1048576 }->{$2})
                : undef;

    my @est = map { $_->{zone_records_estimate} }
              grep { defined $_->{zone_records_estimate} }
              @{ $p->{chunks} };

    return {
        size => $zone, bytes => $bytes,
        records_estimate_after_each_async_chunk => \@est,
        records_max => (sort { $b <=> $a } @est)[0],
        sample_every => $cfg{sample},
    };
}


sub error_summary {
    my %n;
    my @first;

    open my $el, '<', "$work/logs/error.log" or return {};
    while (<$el>) {
        next unless /\[(warn|error|crit|alert|emerg)\]/;
        next if /for a client that is gone/;
        $n{$1}++;
        push @first, $_ if @first < 5;
    }

    chomp @first;
    return { counts => \%n, first => \@first };
}


sub print_run {
    my ($run, $r) = @_;

    say("run $run:");
    for my $s (@scenarios) {
        my $x = $r->{ $s->{name} };
        my $a = $x->{accounting};
        printf("  %-18s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %5.2fx"
               . "  nginx %5.1f us/req%s%s\n", $s->{label}, $x->{ok_rps},
               $x->{p50_ms}, $x->{p99_ms}, $x->{ratio},
               $x->{nginx_cpu_us} // 0,
               $x->{other} || $x->{socket_errors}
                   ? "  ($x->{other} non-2xx, $x->{socket_errors} socket "
                     . "errors)" : '',
               $a ? "  records $a->{records}/$a->{expected}" : '');
    }
}


sub print_summary {
    my ($out) = @_;

    print "\nmedians of $cfg{runs} run(s), $cfg{connections} connections, "
          . "$cfg{duration} each, linger $cfg{linger} ms (plain/idempotent):\n\n";
    printf("| %-20s | %9s | %8s | %8s | %8s | %12s | %9s |\n",
           'scenario', 'req/s', 'p50 ms', 'p99 ms', 'ratio',
           'nginx us/req', 'CPU ratio');
    printf("| %-20s | %9s | %8s | %8s | %8s | %12s | %9s |\n", '-' x 20,
           '-' x 9, '-' x 8, '-' x 8, '-' x 8, '-' x 12, '-' x 9);
    for my $m (@{ $out->{medians} }) {
        printf("| %-20s | %9.0f | %8.2f | %8.2f | %7.2fx | %12.1f | %8.2fx "
               . "|\n", $m->{label}, $m->{ok_rps}, $m->{p50_ms},
               $m->{p99_ms}, $m->{ratio}, $m->{nginx_cpu_us} // 0,
               $m->{cpu_ratio} // 0);
    }

    my $r = $out->{raw_medians} // {};
    printf("\nraw librdkafka (no HTTP): plain %.0f/s, idempotent %.0f/s; "
           . "%d in flight: plain %.0f/s (p99 %.2f ms), idempotent %.0f/s "
           . "(p99 %.2f ms)\n", $r->{plain}{rate}, $r->{idempotent}{rate},
           $cfg{connections}, $r->{'plain-window'}{rate},
           $r->{'plain-window'}{p99_ms}, $r->{'idempotent-window'}{rate},
           $r->{'idempotent-window'}{p99_ms}) if %$r;

    my $t = $out->{accounting_total};
    printf("records in the broker %d, accepted by nginx %d: %d lost, "
           . "%d duplicated (%d checks)\n", $t->{records}, $t->{expected},
           $t->{lost}, $t->{duplicated}, $t->{checks});

    if (my $m = $out->{rss}{million}) {
        printf("RSS over %d sends:\n", $m->{sends});
        for my $pid (sort keys %{ $m->{before} }) {
            printf("  worker %d: VmRSS %d -> %d KiB (%+d), RssAnon %+d, "
                   . "RssShmem %+d KiB\n", $pid, $m->{before}{$pid}{VmRSS},
                   $m->{after}{$pid}{VmRSS},
                   $m->{growth_kib}{$pid}{VmRSS},
                   $m->{growth_kib}{$pid}{RssAnon},
                   $m->{growth_kib}{$pid}{RssShmem});
        }
        printf("status zone %s: records ~%s after each async chunk\n",
               $m->{zone}{size},
               join(' ', @{ $m->{zone}{records_estimate_after_each_async_chunk} }));
    }

    my $e = $out->{error_log}{counts};
    printf("error log: %s\n",
           %$e ? join(', ', map { "$e->{$_} $_" } sort keys %$e) : 'clean');
}


sub chart {
    my ($out, $png) = @_;

    my $dat = "$work/chart.dat";
    my @m = @{ $out->{medians} };

    write_file($dat, join '', map {
        sprintf("%d \"%s\" %.1f %.6f %.6f %.6f\n", $_, $m[$_]{label},
                $m[$_]{ok_rps}, $m[$_]{ratio}, $m[$_]{p50_ms},
                $m[$_]{p99_ms})
    } 0 .. $#m);

    my $ceiling = $m[0]{ok_rps};
    my $c = $out->{config};
    my $title = sprintf('%s, %d connections, %s x %d runs (medians), '
                        . 'linger %s ms, %s', 'nginx + kafka-mock',
                        $c->{connections}, $c->{duration}, $c->{runs},
                        $c->{linger}, $out->{meta}{date});

    my $plot = <<"EOF";
set terminal pngcairo size 1400,560 font "DejaVu Sans,11"
set output "$png"
ceiling = $ceiling
set multiplot layout 1,2 title "$title"
set style fill solid 0.85 border -1
set boxwidth 0.7
set grid ytics
set xtics rotate by -25 nomirror
set key top right
set yrange [0:ceiling*1.15]
set xrange [-0.6:6.6]

set title "requests/s (bars) and ratio to return 200"
set ylabel "requests/s"
set arrow 1 from -0.6,ceiling to 6.6,ceiling nohead dt 2 lw 2 lc rgb "#444444"
set arrow 2 from 1.5,0.8*ceiling to 3.5,0.8*ceiling nohead lw 2 lc rgb "#d62728"
set arrow 3 from 3.5,0.5*ceiling to 5.5,0.5*ceiling nohead lw 2 lc rgb "#d62728"
set label 1 "red: targets, async >= 0.8x and sync >= 0.5x of return 200" at graph 0.02,0.97 tc rgb "#d62728"
plot "$dat" using 1:3:xtic(2) with boxes lc rgb "#1f77b4" notitle, \\
     "" using 1:3:(sprintf("%.2fx", \$4)) with labels offset 0,0.8 notitle

unset arrow
unset label
set title "latency (ms, log scale): p50 and p99"
set ylabel "ms"
set logscale y
set yrange [0.1:1000]
set format y "%g"
set boxwidth 0.35
set arrow 4 from 3.5,3 to 5.5,3 nohead lw 2 lc rgb "#d62728"
set label 4 "red: sync p99 target, 3 ms" at graph 0.02,0.97 tc rgb "#d62728"
set key top right horizontal
plot "$dat" using (\$1-0.18):5 with boxes lc rgb "#9ecae1" title "p50", \\
     "" using (\$1+0.18):6:xtic(2) with boxes lc rgb "#08519c" title "p99", \\
     "" using (\$1-0.18):5:(sprintf("%.1f", \$5)) with labels offset 0,0.7 font ",9" notitle, \\
     "" using (\$1+0.18):6:(sprintf("%.1f", \$6)) with labels offset 0,0.7 font ",9" notitle
unset multiplot
EOF

    write_file("$work/chart.gp", $plot);
    system('gnuplot', "$work/chart.gp") == 0
        or say("gnuplot failed, no chart");
}
