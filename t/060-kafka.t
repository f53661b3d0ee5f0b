# What only a real broker can show: Apache Kafka behind Toxiproxy, as
# `make test-kafka` starts them (tools/test-kafka.sh).  nginx bootstraps
# through Toxiproxy's kafka-proxy; every record is read back on the
# broker's INTERNAL listener, never through the proxy (its toxics would
# distort the count).
#
#   1  the duplicate lesson: a late acknowledgement, plain vs idempotent
#   2  the lab's 5 s latency and 2 s timeout toxics, and recovery
#   3  the broker killed (kill -9) and restarted under async and sync load
#   4  the idempotent producer's id and epoch come from the broker
#   5  the proxy disabled and enabled: every broker unreachable
#
# Skipped unless TEST_NGINX_KAFKA_BROKERS, TEST_NGINX_KAFKA_READ_BROKERS,
# TEST_NGINX_TOXIPROXY_URL and TEST_NGINX_KAFKA_CTL name a real cluster.

use strict;
use warnings;

use lib 't/lib';
use Test::KafkaProducer;
use HTTP::Tiny;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

BEGIN {
    my @missing = grep { !defined $ENV{$_} || $ENV{$_} eq '' }
        qw(TEST_NGINX_KAFKA_BROKERS TEST_NGINX_KAFKA_READ_BROKERS
           TEST_NGINX_TOXIPROXY_URL TEST_NGINX_KAFKA_CTL);
    if (@missing) {
        Test::More::plan(skip_all => "no real Kafka cluster (@missing unset):"
                                     . " make test-kafka runs this file");
    }
}

our $Config = <<'_EOC_';
    location = /api/v1/send {
        kafka_producer_send;
    }

    location = /api/v1/status {
        kafka_producer_status;
    }

    location = /health/detail {
        kafka_producer_health detail;
    }
_EOC_

our $Topic = 'bhf-transactions';
my $Toxi = HTTP::Tiny->new(timeout => 10);
my $ToxiUrl = $ENV{TEST_NGINX_TOXIPROXY_URL};

# Toxiproxy's API: proxy kafka-proxy, as in the lab
sub toxi {
    my ($method, $path, $body) = @_;
    my $r = $Toxi->request($method, "$ToxiUrl$path",
        defined $body ? { content => JSON::PP::encode_json($body),
                          headers => { 'Content-Type' => 'application/json' } } : {});
    die "toxiproxy $method $path: $r->{status} $r->{content}\n"
        unless $r->{success} || ($method eq 'DELETE' && $r->{status} == 404);
    return $r->{content};
}

sub toxic_add {
    my ($name, $type, $attributes) = @_;
    toxi('POST', '/proxies/kafka-proxy/toxics',
         { name => $name, type => $type, stream => 'downstream', toxicity => 1.0,
           attributes => $attributes });
}

sub toxic_remove { toxi('DELETE', "/proxies/kafka-proxy/toxics/$_[0]") }

sub proxy_enable { toxi('POST', '/proxies/kafka-proxy', { enabled => $_[0] ? JSON::PP::true : JSON::PP::false }) }

# every toxic removed, the proxy enabled: the state each block starts from
sub proxy_reset {
    my $p = JSON::PP::decode_json(toxi('GET', '/proxies/kafka-proxy'));
    toxic_remove($_->{name}) for @{ $p->{toxics} || [] };
    proxy_enable(1);
}

END { eval { proxy_reset(); 1 } }

# the broker, through tools/kafka/kafka.sh (KAFKA_* from the runner)
sub kafka_ctl {
    my ($cmd) = @_;
    my $out = `$ENV{TEST_NGINX_KAFKA_CTL} $cmd 2>&1`;
    die "kafka.sh $cmd failed ($?):\n$out" if $?;
    note("kafka.sh $cmd: $out");
    return $out;
}

# GET /health/detail, decoded
sub detail {
    my ($s, undef, $b) = http_request('GET', '/health/detail');
    die "health detail: $s $b" unless $s == 200;
    return JSON::PP::decode_json($b);
}

# the nginx error log of the running block
sub error_log { Test::KafkaProducer::_slurp(nginx_prefix() . '/logs/error.log') }

# polls until $code returns true or $timeout seconds passed; returns its value
sub until_true {
    my ($code, $timeout) = @_;
    my $end = time + $timeout;
    while (1) {
        my $v = $code->();
        return $v if $v || time > $end;
        sleep 0.1;
    }
}

# a request made by a child process while the test goes on: returns a
# function that waits for it and gives ($status, \%headers, $body)
sub http_request_bg {
    my ($method, $uri, %opt) = @_;
    my $file = nginx_prefix() . '/bg-' . int(rand(1e9)) . '.json';
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my $r = eval { scalar http_request($method, $uri, undef, %opt) } || { error => $@ };
        open my $fh, '>', $file or POSIX::_exit(1);
        print {$fh} JSON::PP->new->allow_nonref->encode(
            { status => $r->{status}, headers => $r->{headers}, body => $r->{body},
              elapsed => $r->{elapsed}, error => $r->{error} });
        close $fh;
        POSIX::_exit(0);    # not the harness's END blocks: nginx is the parent's
    }
    return sub {
        waitpid $pid, 0;
        my $r = JSON::PP::decode_json(Test::KafkaProducer::_slurp($file) || '{}');
        return ($r->{status}, $r->{headers} || {}, $r->{body} // '', $r->{elapsed}, $r->{error});
    };
}

run_tests();

__DATA__

=== TEST 1: the duplicate lesson: a late acknowledgement stores a plain send twice, an idempotent one once
The broker appends at once, Toxiproxy holds its answers 3 s, beyond the
producers' 1 s socket timeout and well below the 30 s delivery timeout:
librdkafka gives up on the request, reconnects and sends the batch again.
The broker stores the plain resend as a new record; it recognises the
idempotent resend (same producer id, epoch and sequence) and answers with
the first offset.
--- init_code
main::proxy_reset();
--- workers: 1
--- http_config
    kafka_producer_option socket.timeout.ms 1000;
    kafka_producer_delivery_timeout 30s;
--- config eval: $::Config
--- requests eval
# connections, metadata and the producer id first, as the lab adds its
# toxic to a running system
["POST /api/v1/send?mode=plain&eventId=k1-warm-plain&partition=0",
 "POST /api/v1/send?mode=idempotent&eventId=k1-warm-idempotent&partition=0"]
--- error_code: 200
--- timeout: 60
--- test_code
my %count;
for my $mode (qw(plain idempotent)) {
    my $before = () = error_log() =~ /timed out/gi;
    main::toxic_add('late_ack', 'latency', { latency => 3000 });
    my $uri = "/api/v1/send?mode=$mode&eventId=k1-$mode&partition=0";
    my $wait = main::http_request_bg('POST', $uri, timeout => 45);
    # the fault has worked once librdkafka says a request timed out
    my $seen = main::until_true(sub { (() = error_log() =~ /timed out/gi) > $before }, 20);
    ok($seen, "$mode: librdkafka timed a Produce request out under the toxic")
        or diag(error_log());
    main::toxic_remove('late_ack');
    my ($s, $h, $b) = $wait->();
    is($s, 200, "$mode: the send succeeds once the answers come in time") or diag($b);
    kafka_check_send($uri, $s, $h, $b, label => "$mode send", count => '-');
    $count{$mode} = kafka_count_event($main::Topic, "k1-$mode");
}
cmp_ok($count{plain}, '>=', 2, "plain: the topic holds the record $count{plain} times");
is($count{idempotent}, 1, "idempotent: the topic holds the record $count{idempotent} time");
Test::More::diag("duplicate lesson on Apache Kafka: plain $count{plain} copies, idempotent $count{idempotent}");
