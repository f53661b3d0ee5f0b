package Test::KafkaProducer::TestNginx;

# Runs our t/ files under OpenResty's Test::Nginx::Socket instead of our
# harness: `TEST_KP_TEST_NGINX=1 prove -I/path/to/test-nginx/lib t/X.t`.
# Test::KafkaProducer's import() hands over to import_into() below, so the
# files need no edit.  In the way lua-nginx-module's t::TestNginxLua
# extends Test::Nginx::Socket, this is a block preprocessor: it loads the
# module (TEST_NGINX_LOAD_MODULES), adds the default http config (brokers
# of our mock cluster, the status zone), applies a block's --- workers,
# skips the blocks that need what only our harness does (mock faults, Perl
# code run before nginx starts, a process environment), and runs a block
# with --- test_code or --- final_code without that code (and without its
# error_log checks).  Everything else -- requests, status codes, bodies,
# headers, error logs -- is judged by Test::Nginx::Socket's own code.
# The Kafka read-back is ours alone: it does not run here.  See t/README.md.

use strict;
use warnings;


# sections only our harness knows how to run: such a block is skipped
my @OURS_ONLY = qw(kafka_mock_after kafka_mock_before_check kafka_mock_only
                   init_code env);

# Perl code our harness runs after the requests and their checks: Test::Nginx
# runs the rest of the block without it
my @CODE_AFTER = qw(test_code final_code);

my $FileWorkers;

sub _skip_reason {
    my ($block) = @_;
    for my $sec (@OURS_ONLY) {
        return "--- $sec needs Test::KafkaProducer" if defined $block->{$sec};
    }
    if (defined(my $mock = $block->kafka_mock)) {
        return '--- kafka_mock with a fault needs Test::KafkaProducer'
            if grep { !/^#/ && !/^topic\s+\S+\s+\d+$/ }
               grep { length } map { s/^\s+|\s+$//gr } split /\n/, $mock;
    }
    return undef;
}

sub _preprocess {
    my ($block) = @_;
    $FileWorkers //= Test::Nginx::Util::workers();
    # the mock cluster of our harness (a child of this process), started
    # after the file header (which may set kafka_mock_args)
    $ENV{TEST_NGINX_KAFKA_BROKERS} //= Test::KafkaProducer::kafka_bootstrap();
    if (my $why = _skip_reason($block)) {
        $block->set_value('skip_eval', "1: 1");
        $block->set_value('name', $block->name . " ($why)");
        return;
    }
    if (my @code = grep { defined $block->{$_} } @CODE_AFTER) {
        $block->set_value('name', $block->name . " (--- @code not run here)");
        # what the log must (not) say may come from what the code did
        delete @$block{qw(error_log no_error_log)};
    }
    my $w = $block->workers;
    $w =~ s/^\s+|\s+$//g if defined $w;
    Test::Nginx::Util::workers($w || $FileWorkers);
    if (defined(my $mock = $block->kafka_mock)) {
        for my $cmd (grep { /^topic\s/ } map { s/^\s+|\s+$//gr } split /\n/, $mock) {
            next if $ENV{TEST_KP_REAL_BROKERS};
            local $ENV{TEST_NGINX_KAFKA_BROKERS};
            delete $ENV{TEST_NGINX_KAFKA_BROKERS};
            Test::KafkaProducer::kafka_mock($cmd);
        }
    }
    if (!defined $block->{no_default_http_config} && !defined $block->{no_module}) {
        $block->set_value('http_config',
            "    kafka_producer_brokers  \$TEST_NGINX_KAFKA_BROKERS;\n"
            . "    kafka_producer_status_zone  kafka_status:1m;\n"
            . ($block->http_config // ''));
    }
}

sub import_into {
    my ($class, $pkg, @args) = @_;
    # before Test::Nginx::Util reads them
    $ENV{TEST_NGINX_LOAD_MODULES} //= join ' ', Test::KafkaProducer::_load_modules();
    $ENV{TEST_NGINX_MASTER_PROCESS} //= 'on';
    $ENV{TEST_KP_REAL_BROKERS} = 1 if defined $ENV{TEST_NGINX_KAFKA_BROKERS};
    require Test::Nginx::Socket;
    # our harness adds no `location /` either
    Test::Nginx::Util::no_root_location();
    $ENV{TEST_NGINX_PREFIX} //= $ENV{TEST_NGINX_SERVER_ROOT};
    ## no critic (ProhibitStringyEval)
    eval "package $pkg; Test::Nginx::Socket->import(\@args); 1" or die $@;
    no strict 'refs';
    for my $name (@Test::KafkaProducer::EXPORT) {
        next if defined &{"${pkg}::$name"};
        *{"${pkg}::$name"} = \&{"Test::KafkaProducer::$name"};
    }
    Test::Nginx::Socket::add_block_preprocessor(\&_preprocess);
    return;
}

1;
