/* templates.c -- advice templates, stored as plain text in
 * $XDG_CONFIG_HOME/mhtas/templates.txt (~/.config/mhtas/templates.txt):
 *
 *   # comment lines (only before the first template)
 *   Title of the first template
 *   Text inserted into the draft, any number of lines.
 *   ---
 *   Title of the second template
 *   ...
 *
 * Blocks are separated by a line holding only "---"; a block's first line
 * is its title, the rest its text. The practitioner edits them in the
 * client (Edit templates...) or in any editor; the text inserted into a
 * draft can be changed before sending. */
#include "desk/desk.h"

#include <string.h>

static const char default_templates[] =
    "# mhtas advice templates: blocks separated by a line holding only ---\n"
    "# The first line of a block is its title, the rest is the text inserted.\n"
    "Known to services\n"
    "The person is known to mental-health services. Their care team is aware and the crisis plan says: ...\n"
    "---\n"
    "Not known to services\n"
    "The person is not known to local mental-health services (searched by name and date of birth).\n"
    "---\n"
    "Consider s136 (consultation)\n"
    "I have been consulted as the health professional for section 136. My advice: ...\n"
    "A health-based place of safety is the first choice; a police station is never used for under-18s.\n"
    "---\n"
    "Refer to crisis team\n"
    "Please hand over to the crisis team on the out-of-hours number; they can see the person today.\n"
    "---\n"
    "No police attendance (RCRP)\n"
    "Advice: no police attendance needed under Right Care, Right Person; health services will follow up.\n";

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (!g_ascii_isspace(*s))
            return false;
    return true;
}

static void templates_parse(desk_t *d, const char *text)
{
    if (d->tpl_titles) {
        g_ptr_array_free(d->tpl_titles, TRUE);
        g_ptr_array_free(d->tpl_texts, TRUE);
    }
    d->tpl_titles = g_ptr_array_new_with_free_func(g_free);
    d->tpl_texts = g_ptr_array_new_with_free_func(g_free);
    char **lines = g_strsplit(text, "\n", -1);
    GString *body = NULL;
    char *title = NULL;
    bool started = false;
    for (char **l = lines;; l++) {
        bool end = *l == NULL;
        if (!end && !started && (*l)[0] == '#')
            continue;
        if (!end && !started && is_blank(*l))
            continue;
        if (end || strcmp(*l, "---") == 0) {
            if (title && *title) {
                char *b = g_string_free(body, FALSE);
                body = NULL;
                g_strchomp(b);
                g_ptr_array_add(d->tpl_titles, title);
                g_ptr_array_add(d->tpl_texts, b);
            } else {
                g_free(title);
                if (body)
                    g_string_free(body, TRUE);
                body = NULL;
            }
            title = NULL;
            if (end)
                break;
            continue;
        }
        started = true;
        if (title == NULL) {
            title = g_strdup(*l);
            body = g_string_new(NULL);
        } else {
            if (body->len)
                g_string_append_c(body, '\n');
            g_string_append(body, *l);
        }
    }
    g_strfreev(lines);
}

void templates_load(desk_t *d)
{
    g_free(d->tpl_path);
    d->tpl_path = g_build_filename(d->config_dir, "templates.txt", NULL);
    char *text = NULL;
    if (!g_file_get_contents(d->tpl_path, &text, NULL, NULL)) {
        g_file_set_contents(d->tpl_path, default_templates, -1, NULL);
        text = g_strdup(default_templates);
    }
    templates_parse(d, text);
    g_free(text);
}

/* ------------------------------------------------------------ editor */

static void on_save(GtkButton *b, gpointer data)
{
    GtkTextBuffer *buf = data;
    desk_t *d = g_object_get_data(G_OBJECT(b), "desk");
    GtkWindow *w = g_object_get_data(G_OBJECT(b), "win");
    GtkTextIter a, z;
    gtk_text_buffer_get_bounds(buf, &a, &z);
    char *text = gtk_text_buffer_get_text(buf, &a, &z, FALSE);
    g_file_set_contents(d->tpl_path, text, -1, NULL);
    templates_parse(d, text);
    g_free(text);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, d->tabs);
    while (g_hash_table_iter_next(&it, &k, &v))
        tab_reload_templates(v);
    gtk_window_destroy(w);
}

void templates_edit(desk_t *d)
{
    GtkWidget *w = gtk_window_new();
    gtk_window_set_title(GTK_WINDOW(w), "Advice templates");
    gtk_window_set_transient_for(GTK_WINDOW(w), d->win);
    gtk_window_set_default_size(GTK_WINDOW(w), 700, 500);
    GtkWidget *v = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    char *hint = g_strdup_printf("Stored in %s. One template per block; blocks are separated by a line holding only ---; "
                                 "the first line of a block is its title.", d->tpl_path);
    GtkWidget *l = gtk_label_new(hint);
    g_free(hint);
    gtk_label_set_wrap(GTK_LABEL(l), TRUE);
    gtk_box_append(GTK_BOX(v), l);
    GtkWidget *tv = gtk_text_view_new();
    GtkTextBuffer *buf = gtk_text_view_get_buffer(GTK_TEXT_VIEW(tv));
    char *text = NULL;
    if (g_file_get_contents(d->tpl_path, &text, NULL, NULL))
        gtk_text_buffer_set_text(buf, text, -1);
    g_free(text);
    GtkWidget *sw = gtk_scrolled_window_new();
    gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), tv);
    gtk_widget_set_vexpand(sw, TRUE);
    gtk_box_append(GTK_BOX(v), sw);
    GtkWidget *save = gtk_button_new_with_mnemonic("_Save templates");
    g_object_set_data(G_OBJECT(save), "desk", d);
    g_object_set_data(G_OBJECT(save), "win", w);
    g_signal_connect(save, "clicked", G_CALLBACK(on_save), buf);
    gtk_box_append(GTK_BOX(v), save);
    gtk_window_set_child(GTK_WINDOW(w), v);
    gtk_window_present(GTK_WINDOW(w));
}
