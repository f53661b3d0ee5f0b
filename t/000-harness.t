# Self-test of t/lib/Test/KafkaProducer.pm with plain nginx (--- no_module).
# The Kafka blocks need the mock cluster (build/kafka-mock or $KAFKA_MOCK)
# and kcat; without the mock they are skipped. They fake the module's send
# endpoint with "return" and produce the matching records themselves, so the
# harness's read-back code runs without the module.

use lib 't/lib';
use Test::KafkaProducer 'no_plan';

no_shuffle();
check_accum_error_log();
run_tests();

__DATA__

=== TEST 1: status, exact body, headers
--- no_module
--- config
    location = /ok {
        add_header X-Test "yes";
        return 200 "ok\n";
    }
--- request
GET /ok
--- error_code: 200
--- response_body
ok
--- response_headers
X-Test: yes
Content-Type: text/plain
!X-Absent
--- response_headers_like
Server: nginx.*
Content-Length: \d+
--- response_time_lt: 5



=== TEST 2: body regex, other status, variables in config and expectations
--- no_module
--- config
    location = /port {
        return 403 "port=$TEST_NGINX_SERVER_PORT prefix=$TEST_NGINX_PREFIX\n";
    }
--- request
GET /port
--- error_code: 403
--- response_body_like: ^port=\d+ prefix=/\S+kp-nginx-\w+$
--- response_body
port=$TEST_NGINX_SERVER_PORT prefix=$TEST_NGINX_PREFIX



=== TEST 3: request body and more_headers
--- no_module
--- config
    location = /echo {
        return 200 "$request_method $http_x_foo $content_length $arg_a";
    }
--- request
POST /echo?a=b
hello
--- more_headers
X-Foo: bar
--- error_code: 200
--- response_body chomp
POST bar 5 b



=== TEST 4: several requests with per-request expectations
--- no_module
--- config
    location = /a { return 200 "A"; }
    location = /b { return 201 "B"; }
--- request eval
["GET /a", "GET /b", "GET /nothing-here"]
--- error_code eval: [200, 201, 404]
--- response_body_like eval: ['^A$', '^B$', '404 Not Found']



=== TEST 5: error_log and no_error_log, user_files
--- no_module
--- user_files
>>> hello.txt
hello world
>>> sub/dir.txt
in a dir
--- config
    location / { }
--- request eval
['GET /missing.txt',
 'GET /hello.txt',
 'GET /sub/dir.txt']
--- error_code eval: [404, 200, 200]
--- response_body_like eval: ['404 Not Found', '^hello world\\n$', '^in a dir\\n$']
--- error_log eval
['No such file or directory',
 qr/open\(\) "[^"]*missing\.txt" failed/]
--- no_error_log eval
['[crit]',
 qr/\[warn\].*hello/]



=== TEST 6: must_die on an unknown directive
--- no_module
--- config
    bogus_directive on;
--- must_die
--- error_log eval
['unknown directive "bogus_directive"',
 qr/\[emerg\].*nginx\.conf:\d+/]



=== TEST 7: test_code, http_request, nginx_signal reload, main_config, env
--- no_module
--- workers: 2
--- env
KP_HARNESS_TEST=1
--- main_config
    worker_rlimit_nofile 2048;
--- config
    location = /t { return 200 "t"; }
--- test_code
my ($status, $headers, $body) = http_request('GET', '/t');
is($status, 200, 'http_request status');
is($body, 't', 'http_request body');
is($headers->{'content-length'}, 1, 'http_request headers');
ok(nginx_pid() > 1, 'nginx_pid');
ok(-f nginx_prefix() . '/conf/nginx.conf', 'nginx_prefix');
like(Test::KafkaProducer::_slurp(nginx_prefix() . '/conf/nginx.conf'),
     qr/^env  KP_HARNESS_TEST;$/m, 'env directive generated');
nginx_signal('reload');
my $r;
for (1 .. 50) {
    $r = http_request('GET', '/t');
    last if Test::KafkaProducer::_slurp(nginx_prefix() . '/logs/error.log') =~ /gracefully shutting down/;
    select undef, undef, undef, 0.1;
}
is($r->{status}, 200, 'still serving after reload');
--- error_log
reconfiguring
--- log_level: notice



=== TEST 8: a client timeout with --- abort is not a failure
--- no_module
--- user_files eval
">>> slow.txt\n" . ("x" x 1000) . "\n"
--- config
    location / { limit_rate_after 500; limit_rate 100; }
--- request
GET /slow.txt
--- timeout: 1
--- abort
--- error_code: 200
--- response_time_lt: 3



=== TEST 9: kafka_mock sections and function
--- skip_eval: 1: ! -x Test::KafkaProducer::kafka_mock_binary()
--- no_module
--- kafka_mock
# a comment
up all
--- kafka_mock_after
up all
--- config
    location = /t { return 200 "$TEST_NGINX_KAFKA_BROKERS"; }
--- request
GET /t
--- error_code: 200
--- response_body_like: ^[\w.\-]+:\d+(,[\w.\-]+:\d+)*$
--- test_code
like(kafka_mock('up all'), qr/^ok/, 'kafka_mock answers ok');
ok(!eval { kafka_mock('no-such-command-xyz'); 1 }, 'kafka_mock dies on error');
like($@, qr/error/, 'error message passed on');
like(kafka_bootstrap(), qr/:\d+/, 'kafka_bootstrap');



=== TEST 10: Kafka read-back of a (faked) sync send
--- skip_eval: 1: ! -x Test::KafkaProducer::kafka_mock_binary()
--- no_module
--- init_code
kafka_produce('other-topic', 0, 'k-sync-1',
    '{"eventId":"H sync/1","mode":"plain","sendMode":"sync","api":"nginx","ts":"2024-01-02T03:04:05.678Z"}',
    { 'producer-mode' => 'plain', 'send-mode' => 'sync', timestamp => '1704164645678' });
--- config
    location = /api/v1/send {
        default_type application/json;
        return 200 '{"eventId":"H sync/1","mode":"plain","sendMode":"sync","topic":"other-topic","key":"k-sync-1","partition":0,"offset":0}';
    }
--- request
POST /api/v1/send?mode=PLAIN&eventId=H+sync%2F1&topic=other-topic
--- error_code: 200
--- response_body_like: "offset":0
--- final_code
is(kafka_count_event('other-topic', 'H sync/1'), 1, 'kafka_count_event');
my ($rec) = grep { $_->{key} eq 'k-sync-1' } kafka_records('other-topic');
is($rec->{headers_map}{'producer-mode'}, 'plain', 'kafka_records headers_map');
is($rec->{payload_json}{api}, 'nginx', 'kafka_records payload_json');
ok(kafka_record_at('other-topic', 0, 0), 'kafka_record_at');
ok(!defined kafka_record_at('other-topic', 0, 1000), 'kafka_record_at past the end');



=== TEST 11: Kafka read-back of a (faked) async send
--- skip_eval: 1: ! -x Test::KafkaProducer::kafka_mock_binary()
--- no_module
--- init_code
kafka_produce('other-topic', 1, 'k-async-1',
    '{"eventId":"H-async-1","mode":"json","sendMode":"async","api":"nginx","ts":"2024-01-02T03:04:05.678Z"}',
    { 'producer-mode' => 'json', 'send-mode' => 'async', timestamp => '1704164645678' });
--- config
    location = /api/v1/send {
        default_type application/json;
        add_header Location "/api/v1/status?requestId=5f0c7a4e-2b1d-4c3e-9a8b-1d2e3f4a5b6c" always;
        return 202 '{"requestId":"5f0c7a4e-2b1d-4c3e-9a8b-1d2e3f4a5b6c","state":"PENDING"}';
    }
    location = /api/v1/status {
        default_type application/json;
        return 200 '{"requestId":"$arg_requestId","state":"OK","topic":"other-topic","partition":1,"offset":0,"key":"k-async-1"}';
    }
--- request
POST /api/v1/send?mode=json&sendMode=async&eventId=H-async-1&topic=other-topic
--- error_code: 202



=== TEST 12: a failed (faked) send must not be in Kafka; kafka_check_send
--- skip_eval: 1: ! -x Test::KafkaProducer::kafka_mock_binary()
--- no_module
--- config
    location = /api/v1/send {
        default_type application/json;
        return 503 '{"error":"brokers unavailable"}';
    }
--- request
POST /api/v1/send?mode=plain&eventId=H-fail-1
--- error_code: 503
--- test_code
my ($status, $headers, $body) = http_request('POST', '/api/v1/send?mode=plain&eventId=H-fail-2');
kafka_check_send('/api/v1/send?mode=plain&eventId=H-fail-2', $status, $headers, $body);
