#!/usr/bin/perl
# tools/t-test-nginx-convert.pl t/NNN-x.t ...: rewrites t/ files written for
# the former Test::KafkaProducer semantics into Test::Nginx::Socket's (issue
# 15), in place; review the diff, then `TEST_KP_CHECK_ONLY=1 prove FILE`
# and `prove FILE`.  What it does:
#   - `use Test::KafkaProducer;` -> `use Test::KafkaProducer 'no_plan';`,
#     `no_shuffle();` before `run_tests();` (a file that calls plan(skip_all)
#     in a BEGIN block must instead keep the plain `use` and call
#     `plan('no_plan');` after that block: fix by hand);
#   - `--- requests` -> `--- request eval` with an array;
#   - with several requests, every per-request expectation (error_code,
#     response_body(_like), response_headers(_like), response_time_lt,
#     kafka_count, async_state) becomes an array, one element per request;
#   - `--- error_log` / `--- no_error_log` with a `qr/` line -> `eval` with
#     an array of qr// and strings;
#   - `--- skip_if: CODE` -> `--- skip_eval: 1: CODE`.
# It warns about what it leaves to you: every `--- response_headers_like`
# (anchored now: a value regex must match the whole value), eval sections it
# cannot evaluate on its own.
use strict; use warnings;
my $file = shift;
local $/; open my $fh, '<', $file or die "$file: $!"; my $src = <$fh>; close $fh;
my ($head, $data) = split /^__DATA__\n/m, $src, 2;
die "$file: no __DATA__\n" unless defined $data;
$head =~ s/^use Test::KafkaProducer;$/use Test::KafkaProducer 'no_plan';/m or warn "$file: no use line\n";
$head =~ s/^run_tests\(\);$/no_shuffle();\nrun_tests();/m or warn "$file: no run_tests\n";

sub q1 { my $s = shift; $s =~ s/([\\'])/\\$1/g; "'$s'" }
sub list { my ($n, @v) = @_; my %u = map { $_ => 1 } @v;
    return "[(" . $v[0] . ") x $n]" if keys %u == 1 && ($n > 3 || length $v[0] > 20);
    return "[" . join(', ', @v) . "]"; }
sub try_eval { my $code = shift; no strict; my @r = eval "package main; $code"; return $@ ? undef : \@r }

my %LINE = map { $_ => 1 } qw(error_code response_body_like response_time_lt kafka_count async_state);
my %WHOLE = map { $_ => 1 } qw(response_body response_headers response_headers_like);

my @blocks = split /^(?==== )/m, $data;
for my $b (@blocks) {
    next unless $b =~ /^=== /;
    my ($title, @secs);
    # parse
    my ($tail) = $b =~ /(\n*)\z/; $b =~ s/\n*\z//;
    my @lines = split /\n/, $b, -1;
    $title = shift @lines;
    my $pre = '';
    while (@lines && $lines[0] !~ /^--- /) { $pre .= shift(@lines) . "\n" }
    while (@lines) {
        my $l = shift @lines;
        die "$file: $title: $l\n" unless $l =~ /^--- (\w+)((?: \w+)*)(?:: ?(.*))?$/;
        my %s = (name => $1, filters => $2, inline => $3, body => '');
        while (@lines && $lines[0] !~ /^--- \w/) { $s{body} .= shift(@lines) . "\n" }
        push @secs, \%s;
    }
    my %by = map { $_->{name} => $_ } @secs;
    my $val = sub { my $s = shift; defined $s->{inline} ? $s->{inline} : $s->{body} };
    # requests
    if (my $r = $by{requests}) {
        $r->{name} = 'request';
        if ($r->{filters} !~ /eval/) {
            my @req = grep { length } map { s/^\s+|\s+$//gr } split /\n/, $val->($r);
            $r->{filters} = ' eval'; $r->{inline} = undef;
            $r->{body} = '[' . join(",\n ", map { q1($_) } @req) . "]\n";
            $r->{trail} = '';
        }
        $by{request} = $r;
    }
    my $n = 1;
    if (my $r = $by{request}) {
        if ($r->{filters} =~ /eval/) {
            my $res = try_eval($val->($r));
            if (!$res) { warn "$file: $title: cannot eval request: $@\n"; $n = undef }
            else { $n = @$res == 1 && ref $res->[0] eq 'ARRAY' ? scalar @{ $res->[0] } : scalar @$res }
        }
    }
    if (defined $n && $n > 1) {
        for my $s (@secs) {
            next unless $LINE{$s->{name}} || $WHOLE{$s->{name}};
            if ($s->{filters} =~ /eval/) {
                my $code = $val->($s); $code =~ s/\s+\z//;
                my $res = try_eval($code);
                if (!$res) { warn "$file: $title: --- $s->{name} eval: cannot eval, check by hand\n"; next }
                next if @$res == 1 && ref $res->[0] eq 'ARRAY' && @{ $res->[0] } == $n;
                if (@$res == $n) { $s->{inline} = undef; $s->{body} = "[$code]\n"; next }
                if (@$res == 1) { $s->{inline} = undef; $s->{body} = "[($code) x $n]\n"; next }
                warn "$file: $title: --- $s->{name} eval gives " . scalar(@$res) . " values for $n requests\n";
                next;
            }
            my @v;
            if ($LINE{$s->{name}}) { @v = grep { length } map { s/^\s+|\s+$//gr } split /\n/, $val->($s) }
            else { @v = ($val->($s) =~ s{\n\z}{}r) }
            @v = ($v[0]) x $n if @v == 1;
            if (@v != $n) { warn "$file: $title: --- $s->{name}: " . scalar(@v) . " values for $n requests\n"; next }
            $s->{filters} .= ' eval';
            my @q = map { $LINE{$s->{name}} && /^-?\d+$/ ? $_ : q1($_) } @v;
            my $text = list($n, @q);
            if (length($text) < 70 && $text !~ /\n/) { $s->{inline} = $text; $s->{body} = '' if defined $s->{inline} && $s->{body} =~ /^\s*$/; $s->{body} = '' ; }
            else { $s->{inline} = undef; $s->{body} = (length($text) < 70 || $text =~ /\) x \d+\]\z/ ? $text : "[" . join(",\n ", @q) . "]") . "\n" }
        }
    }
    # error_log qr/
    for my $s (grep { $_->{name} =~ /^(?:no_)?error_log$/ && $_->{filters} !~ /eval/ } @secs) {
        my @l = grep { length } split /\n/, $val->($s);
        next unless grep { /^qr\// } @l;
        my @items = map { /^qr\// ? $_ : q1($_) } @l;
        warn "$file: $title: \$TEST_NGINX in a qr// of $s->{name}\n" if grep { /^qr\/.*\$TEST_NGINX/ } @l;
        $s->{filters} .= ' eval'; $s->{inline} = undef;
        $s->{body} = @items == 1 ? "$items[0]\n" : "[" . join(",\n ", @items) . "]\n";
    }
    # skip_if
    if (my $s = $by{skip_if}) {
        my $code = $val->($s); $code =~ s/\s+\z//;
        $code =~ s/(?<![:\w])kafka_mock_binary\(/Test::KafkaProducer::kafka_mock_binary(/g;
        $s->{name} = 'skip_eval'; $s->{inline} = "1: $code"; $s->{body} = '';
    }
    # response_headers_like: anchored now
    for my $s (grep { $_->{name} eq 'response_headers_like' } @secs) {
        warn "$file: $title: response_headers_like: check anchors by hand\n";
    }
    # emit
    my $out = "$title\n$pre";
    for my $s (@secs) {
        $out .= "--- $s->{name}$s->{filters}" . (defined $s->{inline} ? ": $s->{inline}" : '') . "\n" . $s->{body};
    }
    $out =~ s/\n*\z/$tail/;
    $b = $out;
}
open $fh, '>', $file or die; print $fh $head, "__DATA__\n", @blocks; close $fh;
