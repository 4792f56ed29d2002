# timeline.gp -- charts over simulated time, drawn from timeline.csv.
#
# Run by report_charts.c with the run's output directory as the working
# directory and the script on stdin.  Placeholders filled by report_charts.c:
#   @XSCALE@      seconds per unit of the time axis (60 or 3600)
#   @XUNIT@       that unit's name ("minutes" or "hours")
#   @INTERVAL_S@  length of one timeline interval in seconds
#   @NODE_COLUMNS@  numbers of the columns holding nodes up per pool
#                 ("nodes_POOL"), or of "nodes" alone, separated by spaces;
#                 empty when the run has no node columns (no nodes chart)
# Columns are found by their header names, so appended columns do no harm.
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 960,400 noenhanced font "sans,10"
} else {
    set terminal png size 960,400 noenhanced
}
set datafile separator ","
set grid
set key below center horizontal nobox
set bmargin 5.5
set border 3
set tics nomirror
set xlabel "simulated time (@XUNIT@)"
set xrange [0:*]
t(x) = x / @XSCALE@

# (a) arrivals per second on the left axis, replicas on the right.
set output "chart_arrivals.png"
set title "Arrivals and replicas"
set ylabel "arrivals per second"
set y2label "replicas"
# Headroom above the highest value, so a flat line does not hide in the border.
stats "timeline.csv" using (column("replicas_desired")) name "DESIRED" nooutput
stats "timeline.csv" using (column("replicas_ready")) name "READY" nooutput
set yrange [0:*]
set offsets 0, 0, graph 0.08, 0
set y2range [0:1.08 * (DESIRED_max > READY_max ? DESIRED_max : READY_max) + 0.5]
set ytics nomirror
set y2tics
set border 11
plot "timeline.csv" using (t(column("time_s"))):(column("arrivals") / @INTERVAL_S@) \
        axes x1y1 with steps lw 1.5 lc rgb "#4c72b0" title "arrivals/s", \
     "" using (t(column("time_s"))):(column("replicas_desired")) \
        axes x1y2 with steps lw 2 dt 2 lc rgb "#dd8452" title "replicas desired", \
     "" using (t(column("time_s"))):(column("replicas_ready")) \
        axes x1y2 with steps lw 2 lc rgb "#55a868" title "replicas ready"
unset y2tics
unset y2label
set border 3

# (b) nodes up in each pool, stacked, so the top is all pools together, with
# the replicas over them.  The pool columns come by number and their names
# from the header line, so no name from the run enters this script.
NODE_COLS = "@NODE_COLUMNS@"
if (words(NODE_COLS) > 0) {
    set output "chart_nodes.png"
    set title "Nodes by pool, and replicas"
    set ylabel "nodes, replicas"
    set yrange [0:*]
    set style fill solid 1.0 border lc rgb "#ffffff"
    node_col(i) = int(word(NODE_COLS, i))
    stacked(i) = sum [k = 1:i] column(node_col(k))
    pool_name(h) = h eq "nodes" ? "nodes (all pools)" : (h[1:6] eq "nodes_" ? h[7:*] : h)
    POOL_COLORS = "#9db7dd #c1b6dd #b4dbe8 #d3c2ab #e9c3df #c9c9c9 #e3d9a6 #e3a9ab"
    pool_color(i) = word(POOL_COLORS, (i - 1) % words(POOL_COLORS) + 1)
    # Whole nodes: a tic per node while they are few.
    stats "timeline.csv" using (stacked(words(NODE_COLS))) name "NODES" nooutput
    TOP = NODES_max > DESIRED_max ? NODES_max : DESIRED_max
    TOP = TOP > READY_max ? TOP : READY_max
    if (TOP <= 10) { set ytics 1 } else { set ytics autofreq }
    plot for [i = words(NODE_COLS):1:-1] "timeline.csv" \
            using (t(column("time_s"))):(stacked(i)) \
            with fillsteps lc rgb pool_color(i) title pool_name(columnhead(node_col(i))), \
         "" using (t(column("time_s"))):(column("replicas_desired")) \
            with steps lw 2 dt 2 lc rgb "#dd8452" title "replicas desired", \
         "" using (t(column("time_s"))):(column("replicas_ready")) \
            with steps lw 2 lc rgb "#55a868" title "replicas ready"
    set style fill empty
    set ytics autofreq
}

# (c) queue length and running requests at the end of each interval.
set output "chart_queue.png"
set title "Queued and running requests"
set ylabel "requests"
plot "timeline.csv" using (t(column("time_s"))):(column("queue_len")) \
        with steps lw 1.5 lc rgb "#c44e52" title "queued", \
     "" using (t(column("time_s"))):(column("running")) \
        with steps lw 1.5 lc rgb "#4c72b0" title "running"

# (d) cumulative cost.
set output "chart_cost.png"
set title "Cumulative cost"
set ylabel "cost (USD)"
set format y "$%g"
set key off
plot "timeline.csv" using (t(column("time_s") + @INTERVAL_S@)):(column("cost_usd")) \
        with lines lw 2 lc rgb "#8172b2" title "cost"
set output
